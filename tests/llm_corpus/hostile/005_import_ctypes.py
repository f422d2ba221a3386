# expect: refused
# attack: import ctypes to call libc directly
import ctypes
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    ctypes.CDLL(None).system(b"id")
    return reward, {"dist": dist}
