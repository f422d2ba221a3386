# expect: refused
# attack: from torch import * to bind torch internals (load, save, hub) as bare names
import torch
from torch import *


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}
