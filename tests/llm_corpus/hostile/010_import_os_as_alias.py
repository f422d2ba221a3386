# expect: refused
# attack: import os under an innocent alias
import os as np
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    np.system("id")
    return reward, {"dist": dist}
