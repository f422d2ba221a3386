# expect: refused
# attack: torch.manual_seed resets the trainer's global RNG
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    torch.manual_seed(0)
    return reward, {"dist": dist}
