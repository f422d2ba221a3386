# expect: refused
# attack: format_map does the same lookups through a mapping
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    leak = "{x.__class__}".format_map({"x": action})
    return reward, {"dist": dist}
