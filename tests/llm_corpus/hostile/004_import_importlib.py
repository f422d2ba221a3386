# expect: refused
# attack: import importlib to load any module by name
import importlib
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    importlib.import_module("os").system("id")
    return reward, {"dist": dist}
