# expect: refused
# attack: try/except to swallow the sandbox's own errors
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    try:
        x = 1 / 0
    except Exception:
        x = 0
    return reward, {"dist": dist}
