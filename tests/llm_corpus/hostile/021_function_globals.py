# expect: refused
# attack: compute_reward.__globals__ to reach the module namespace
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    g = compute_reward.__globals__
    return reward, {"dist": dist}
