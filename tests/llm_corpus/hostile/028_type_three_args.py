# expect: refused
# attack: type(name, bases, dict) to build a class without a class statement
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    Evil = type("Evil", (), {})
    return reward, {"dist": dist}
