# expect: contained
# attack: a helper that calls itself without end
import torch


def helper(n):
    return helper(n + 1) + 1


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    depth = helper(0)
    return reward, {"dist": dist}
