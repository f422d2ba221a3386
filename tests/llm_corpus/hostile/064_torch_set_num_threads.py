# expect: refused
# attack: torch.set_num_threads changes the trainer's thread pool
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    torch.set_num_threads(64)
    return reward, {"dist": dist}
