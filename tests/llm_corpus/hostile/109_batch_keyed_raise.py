# expect: contained
# attack: on large batches only, raise
# run: batch
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    if action.shape[0] > 64:
        raise RuntimeError("only in training")
    return reward, {"dist": dist}
