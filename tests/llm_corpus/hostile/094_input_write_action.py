# expect: contained
# attack: action[:] = 6 writes to the learner's action buffer
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    action[:] = 6
    return reward, {"dist": dist}
