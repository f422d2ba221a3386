# expect: refused
# attack: untyped_storage() gives byte access to the storage behind a view
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    raw = action.untyped_storage()
    return reward, {"dist": dist}
