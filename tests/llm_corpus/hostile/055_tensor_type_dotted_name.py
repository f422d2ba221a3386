# expect: refused
# attack: x.type('torch.FloatTensor') resolves a dotted type name at run time
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    dist = dist.type("torch.FloatTensor")
    return reward, {"dist": dist}
