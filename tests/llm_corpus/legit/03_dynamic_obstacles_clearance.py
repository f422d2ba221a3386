# env: MiniGrid-Dynamic-Obstacles-8x8-v0
"""Keep clear of the moving obstacles while closing in on the goal."""
import torch

SAFE_DISTANCE = 2.0


def compute_reward(state, action, next_state):
    pos = next_state["agent_pos"]
    offsets = (next_state["obstacle_pos"] - pos.unsqueeze(1)).abs().sum(-1).float()
    nearest = offsets.min(dim=-1).values
    too_close = (SAFE_DISTANCE - nearest).clamp(min=0.0) / SAFE_DISTANCE

    goal_dist = torch.linalg.vector_norm((next_state["goal_pos"] - pos).float(), dim=-1)
    closeness = 1.0 / (1.0 + goal_dist)
    reached = (goal_dist == 0).float()

    reward = 0.1 * closeness - 0.2 * too_close + reached
    return reward, {"closeness": closeness, "too_close": too_close, "reached": reached}
