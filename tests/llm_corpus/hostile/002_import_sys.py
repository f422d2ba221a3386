# expect: refused
# attack: import sys to reach sys.modules and the real builtins
import sys
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    mods = sys.modules
    return reward, {"dist": dist}
