# expect: refused
# attack: x.to_sparse() (sparse layouts reached from a tensor method)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    sp = dist.to_sparse()
    reward = -0.01 * sp.to_dense()
    return reward, {"dist": dist}
