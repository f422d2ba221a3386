import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    success = (dist == 0).float()
    temperature = 1.0
    closeness = torch.exp(-dist / temperature)
    return 0.1 * closeness + success, {"closeness": closeness, "success": success}
