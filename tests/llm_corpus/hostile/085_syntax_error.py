# expect: refused
# attack: a syntax error
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    x = (1 +
    return reward, {"dist": dist}
