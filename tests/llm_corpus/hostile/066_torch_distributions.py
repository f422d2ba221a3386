# expect: refused
# attack: torch.distributions (a module outside the allowed list)
import torch


def compute_reward(state, action, next_state):
    dist = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    reward = -0.01 * dist
    noise = torch.distributions.Normal(0.0, 1.0).sample((dist.shape[0],))
    return reward, {"dist": dist}
