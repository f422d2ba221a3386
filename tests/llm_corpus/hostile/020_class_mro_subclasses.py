# expect: refused
# attack: ().__class__.__mro__[1].__subclasses__() to find a class with os in its globals
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    classes = ().__class__.__mro__[1].__subclasses__()
    return reward, {"dist": dist}
