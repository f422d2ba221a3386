# expect: refused
# attack: from os import system under the name of a tensor op
import torch
from os import system as relu


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    relu("id")
    return reward, {"dist": dist}
