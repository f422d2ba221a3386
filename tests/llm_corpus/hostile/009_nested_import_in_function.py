# expect: refused
# attack: an import inside compute_reward, out of sight of a top-level-only check
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    import os
    os.system("id")
    return reward, {"dist": dist}
