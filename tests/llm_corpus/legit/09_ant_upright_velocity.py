# env: Ant-v5
"""Ant: planar speed along +x, kept upright (torso quaternion), with smooth joints."""
import torch

TARGET_SPEED = 2.0


def uprightness(quat):
    """cos of the torso's tilt from the quaternion (w, x, y, z): 1 upright, -1 upside down."""
    w, x, y, z = quat.unbind(-1)
    return 1.0 - 2.0 * (x * x + y * y)


def compute_reward(state, action, next_state):
    qpos, qvel = next_state["qpos"], next_state["qvel"]
    vx = qvel[:, 0]
    speed_match = torch.exp(-torch.square(vx - TARGET_SPEED))
    upright = uprightness(qpos[:, 3:7]).clamp(min=0.0)
    lateral = qvel[:, 1].abs()
    joint_speed = torch.linalg.norm(qvel[:, 6:], dim=-1)
    torso_low = (qpos[:, 2] < 0.3).float()

    reward = speed_match * upright - 0.1 * lateral - 0.01 * joint_speed - torso_low
    return reward, {"speed_match": speed_match, "upright": upright, "lateral": lateral,
                    "joint_speed": joint_speed, "torso_low": torso_low}
