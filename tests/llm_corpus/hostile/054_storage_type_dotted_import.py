# expect: refused
# attack: storage_type()(1).type('this') imports any module by its dotted name
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    torch.zeros(1).storage_type()(1).type("this")
    return reward, {"dist": dist}
