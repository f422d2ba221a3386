# expect: refused
# attack: untyped storage reached via a method: storage_type()(n).untyped() (uninitialised heap bytes)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    raw = torch.zeros(1).storage_type()(4096).untyped().tolist()
    return reward, {"dist": dist}
