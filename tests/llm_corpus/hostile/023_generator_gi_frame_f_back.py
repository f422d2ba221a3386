# expect: refused
# attack: a generator's gi_frame.f_back.f_globals to walk up to the caller's frame
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    frame = (i for i in range(1)).gi_frame.f_back
    caller_globals = frame.f_globals
    return reward, {"dist": dist}
