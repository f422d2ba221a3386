# expect: refused
# attack: torch.cuda to touch device state
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    n = torch.cuda.device_count()
    return reward, {"dist": dist}
