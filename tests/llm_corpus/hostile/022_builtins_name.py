# expect: refused
# attack: __builtins__['open'] to reach the real builtins
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    f = __builtins__["open"]
    return reward, {"dist": dist}
