# expect: contained
# attack: a reward on the meta device
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    reward = torch.zeros(dist.shape[0], device="meta")
    return reward, {"dist": dist}
