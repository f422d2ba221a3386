# env: HalfCheetah-v5
"""Forward velocity of the torso minus a quadratic control cost (the standard HalfCheetah shaping)."""
import torch

FORWARD_WEIGHT = 1.0
CTRL_COST_WEIGHT = 0.1


def compute_reward(state, action, next_state):
    forward_vel = next_state["qvel"][:, 0]
    ctrl_cost = CTRL_COST_WEIGHT * torch.sum(action ** 2, dim=-1)
    reward = FORWARD_WEIGHT * forward_vel - ctrl_cost
    return reward, {"forward_vel": forward_vel, "ctrl_cost": ctrl_cost}
