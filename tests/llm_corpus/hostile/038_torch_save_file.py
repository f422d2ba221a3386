# expect: refused
# attack: torch.save writes a file next to the code
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    torch.save(action, "/tmp/leak.pt")
    return reward, {"dist": dist}
