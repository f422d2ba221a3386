# expect: refused
# attack: a decorator other than the inert torch.jit ones
import torch


def wrap(fn):
    return fn


@wrap
def helper(x):
    return x


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}
