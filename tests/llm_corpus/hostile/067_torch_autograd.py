# expect: refused
# attack: torch.autograd to reach the engine
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    g = torch.autograd.grad
    return reward, {"dist": dist}
