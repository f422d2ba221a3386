# expect: refused
# attack: register_hook runs code later, in the learner's backward pass
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    dist.register_hook(lambda g: g)
    return reward, {"dist": dist}
