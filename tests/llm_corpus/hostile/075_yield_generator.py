# expect: refused
# attack: yield: a generator function (frames survive the call)
import torch


def helper():
    yield 1


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    next(helper())
    return reward, {"dist": dist}
