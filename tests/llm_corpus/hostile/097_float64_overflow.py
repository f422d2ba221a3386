# expect: contained
# attack: float64 1e300 (finite in float64, inf after the float32 cast)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    reward = reward.double() + 1e300
    return reward, {"dist": dist}
