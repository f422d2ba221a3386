# expect: refused
# attack: mutable_data_ptr() (data_ptr under another name, newer torch)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    addr = action.mutable_data_ptr()
    return reward, {"dist": dist}
