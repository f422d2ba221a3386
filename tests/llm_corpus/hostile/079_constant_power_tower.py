# expect: refused
# attack: 9**9**9 at the top level (runs when the module loads, in the trainer)
import torch
HUGE = 9 ** 9 ** 9


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    return reward, {"dist": dist}
