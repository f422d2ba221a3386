# expect: refused
# attack: compute_reward defined twice (the second one wins at run time)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}


def compute_reward(state, action, next_state):
    return torch.zeros(action.shape[0]), {}
