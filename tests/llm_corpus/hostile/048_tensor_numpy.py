# expect: refused
# attack: tensor.numpy() to leave torch for numpy (and its file APIs)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    arr = action.numpy()
    return reward, {"dist": dist}
