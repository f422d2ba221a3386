# expect: refused
# attack: compute_reward with the wrong parameters
import torch


def compute_reward(state, action, next_state, extra=None):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}
