# expect: refused
# attack: __import__('os') as a call
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    __import__("os").system("id")
    return reward, {"dist": dist}
