# expect: refused
# attack: a relative import reaching the sandbox package itself
import torch
from . import runtime


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}
