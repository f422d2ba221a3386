# expect: refused
# attack: torch.FloatStorage (a class outside the allowed list)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    raw = torch.FloatStorage(16)
    return reward, {"dist": dist}
