# expect: contained
# attack: a reward of shape [N, 1]
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    reward = reward.unsqueeze(-1)
    return reward, {"dist": dist}
