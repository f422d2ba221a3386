# expect: refused
# attack: x.data = ... swaps an input's storage
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    action.data = torch.zeros_like(action)
    return reward, {"dist": dist}
