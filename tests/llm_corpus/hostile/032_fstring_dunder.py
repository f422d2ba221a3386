# expect: refused
# attack: a dunder attribute inside an f-string expression
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    leak = f"{action.__class__}"
    return reward, {"dist": dist}
