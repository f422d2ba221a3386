# expect: refused
# attack: const_data_ptr() leaks the buffer address (data_ptr under another name)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    addr = action.const_data_ptr()
    return reward, {"dist": dist}
