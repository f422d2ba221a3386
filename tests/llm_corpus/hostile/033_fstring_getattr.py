# expect: refused
# attack: getattr hidden inside an f-string
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    leak = f"{getattr(action, 'numpy')}"
    return reward, {"dist": dist}
