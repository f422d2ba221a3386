# expect: contained
# attack: raising an exception from compute_reward
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    raise RuntimeError("boom")
    return reward, {"dist": dist}
