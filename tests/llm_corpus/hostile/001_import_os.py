# expect: refused
# attack: import os at the top level to reach os.system
import os
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    os.system("id")
    return reward, {"dist": dist}
