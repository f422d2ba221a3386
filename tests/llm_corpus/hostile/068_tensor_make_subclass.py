# expect: refused
# attack: torch.Tensor._make_subclass to build a tensor subclass
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    sub = torch.Tensor._make_subclass(torch.Tensor, dist)
    return reward, {"dist": dist}
