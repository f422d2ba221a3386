# expect: contained
# attack: torch.zeros(10**11) (the memory limit stops it)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    buf = torch.zeros(10 ** 11)
    return reward, {"dist": dist}
