# expect: refused
# attack: [0] * 10**10 at the top level
import torch
HUGE = [0] * 10 ** 10


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}
