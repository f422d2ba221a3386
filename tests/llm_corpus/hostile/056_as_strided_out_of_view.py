# expect: refused
# attack: as_strided to read memory outside a view
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    leak = dist.as_strided((4,), (1,), 1000)
    return reward, {"dist": dist}
