# expect: refused
# attack: data_ptr() leaks the address of the rollout buffer
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    addr = action.data_ptr()
    return reward, {"dist": dist}
