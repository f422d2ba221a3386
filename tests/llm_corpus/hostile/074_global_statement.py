# expect: refused
# attack: global to rebind module names
import torch


def helper():
    global torch
    torch = None


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    helper()
    return reward, {"dist": dist}
