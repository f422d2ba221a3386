# expect: refused
# attack: from torch import load (binds a file-reading entry point as a bare name)
import torch
from torch import load


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    secret = load("/etc/passwd")
    return reward, {"dist": dist}
