# env: HalfCheetah-v5
"""Run at a target speed without flipping over: the torso pitch is wrapped to [-pi, pi]."""
import math

import torch

TARGET_SPEED = 3.0
MAX_PITCH = math.pi / 3


def wrap_angle(a):
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def compute_reward(state, action, next_state):
    pitch = wrap_angle(next_state["qpos"][:, 2])
    flipped = (pitch.abs() > MAX_PITCH).float()
    vx = next_state["qvel"][:, 0]
    tracking = torch.exp(-0.5 * (vx - TARGET_SPEED) ** 2)
    effort = action.abs().max(dim=-1).values
    reward = tracking - 0.5 * flipped - 0.05 * effort
    return reward, {"tracking": tracking, "flipped": flipped, "pitch": pitch, "effort": effort}
