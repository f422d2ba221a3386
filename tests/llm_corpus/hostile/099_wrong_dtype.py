# expect: contained
# attack: an int64 reward
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    reward = dist.long()
    return reward, {"dist": dist}
