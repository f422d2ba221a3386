# env: MiniGrid-LavaGapS7-v0
"""Progress towards the goal, with a penalty that grows as the agent gets close to lava."""
import torch

LAVA = 9


def lava_distance(grid, pos):
    """Manhattan distance from ``pos`` [N, 2] (x, y) to the nearest lava cell of ``grid`` [N, H, W, 3]."""
    n, h, w, _ = grid.shape
    ys = torch.arange(h, device=grid.device).view(1, h, 1)
    xs = torch.arange(w, device=grid.device).view(1, 1, w)
    d = (xs - pos[:, 0].view(n, 1, 1)).abs() + (ys - pos[:, 1].view(n, 1, 1)).abs()
    d = d.float().masked_fill(grid[..., 0] != LAVA, torch.finfo(torch.float32).max)
    return d.flatten(1).min(dim=-1).values.clamp(max=float(h + w))


def compute_reward(state, action, next_state):
    before = (state["agent_pos"] - state["goal_pos"]).abs().sum(-1).float()
    after = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    progress = (before - after).clamp(-1.0, 1.0)
    danger = torch.exp(-lava_distance(next_state["grid"], next_state["agent_pos"]))
    reward = 0.1 * progress - 0.05 * danger
    return reward, {"progress": progress, "danger": danger}
