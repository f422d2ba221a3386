# env: Hopper-v5
"""Hop forward while staying healthy: torso height and angle inside a band, bounded velocities."""
import math

import torch

HEALTHY_Z = (0.7, math.inf)
HEALTHY_ANGLE = 0.2
STATE_LIMIT = 100.0


def is_healthy(qpos, qvel):
    z, angle = qpos[:, 1], qpos[:, 2]
    z_ok = (z > HEALTHY_Z[0]) & (z < HEALTHY_Z[1])
    angle_ok = angle.abs() < HEALTHY_ANGLE
    rest = torch.cat([qpos[:, 2:], qvel], dim=-1)
    bounded = (rest.abs() < STATE_LIMIT).all(dim=-1)
    return (z_ok & angle_ok & bounded).float()


def compute_reward(state, action, next_state):
    dx = next_state["qpos"][:, 0] - state["qpos"][:, 0]
    forward = dx / 0.008  # frame_skip 4 x timestep 0.002
    healthy = is_healthy(next_state["qpos"], next_state["qvel"])
    ctrl_cost = 1e-3 * torch.square(action).sum(-1)
    reward = forward + healthy - ctrl_cost
    return reward, {"forward": forward, "healthy": healthy, "ctrl_cost": ctrl_cost}
