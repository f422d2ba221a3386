# env: MiniGrid-FourRooms-v0
"""Reward facing (and moving) towards the goal in FourRooms; a small cost per step."""
import math

import torch
import torch.nn.functional as F

FORWARD = 2
DIR_TO_VEC = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))


def compute_reward(state, action, next_state):
    heading = torch.tensor(DIR_TO_VEC, device=action.device)[next_state["agent_dir"]]
    to_goal = (next_state["goal_pos"] - next_state["agent_pos"]).float()
    to_goal = F.normalize(to_goal, dim=-1, eps=1e-6)
    alignment = (heading * to_goal).sum(-1)
    angle = torch.acos(alignment.clamp(-1.0, 1.0)) / math.pi  # 0 facing the goal, 1 facing away

    moved = (next_state["agent_pos"] != state["agent_pos"]).any(dim=-1).float()
    useful_step = moved * (action == FORWARD).float() * (1.0 - angle)
    step_cost = torch.full_like(angle, -0.01)

    reward = 0.05 * (1.0 - angle) + 0.1 * useful_step + step_cost
    return reward, {"facing": 1.0 - angle, "useful_step": useful_step, "step_cost": step_cost}
