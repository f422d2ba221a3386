# expect: refused
# attack: an exception's traceback frame (tb_frame) to reach the caller
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    err = ValueError('x')
    frame = err.__traceback__.tb_frame
    return reward, {"dist": dist}
