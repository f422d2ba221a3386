# expect: refused
# attack: an in-place method (add_) writes to an input
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    next_state['agent_pos'].add_(1)
    return reward, {"dist": dist}
