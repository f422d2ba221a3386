"""Exploration diagnostics for grid worlds: state-visitation heatmaps and the fraction of the grid discovered.

Works with any batched env whose ``get_state()`` has ``agent_pos: int64[N, 2]`` (x, y) and whose
:meth:`~rlcore.env.BatchedEnv.task_info` names a symbolic grid: ``grid_key`` (a state key holding
``uint8[N, H, W, 3]`` indexed ``[n, y, x]``, object type in channel 0) and ``grid.wall`` (the object
code of a wall), such as the batched MiniGrid. Counting runs on the device with tensor ops each step;
numbers reach the host once per rollout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

from rlcore.callbacks import Callback


def _grid_layout(env) -> tuple[str, int] | None:
    """``(state key of the grid, wall code)`` from ``env.task_info()``, or None when it names none."""
    task = env.task_info() if hasattr(env, "task_info") else None
    if task is None or task.grid is None or task.grid_key is None:
        return None
    return task.grid_key, task.grid.wall


def supports_visitation(env) -> bool:
    """True when ``env`` describes a symbolic grid in its state and ``get_state()`` has ``agent_pos``."""
    layout = _grid_layout(env)
    if layout is None:
        return False
    state = env.get_state()
    return "agent_pos" in state and layout[0] in state and state[layout[0]].dim() == 4


class VisitationTracker(Callback):
    """Counts the cells agents stand on and, per episode, the fraction of non-wall cells visited.

    Metrics added to each iteration's log:
        ``explore/episode_cells_visited``: fraction of an episode's non-wall cells the agent stood on,
            averaged over the episodes that ended in the iteration (the position after each step is
            counted, including the first position of each episode);
        ``explore/cells_ever_visited``: fraction of grid positions (non-wall in env 0's current
            layout) ever visited by any env since training started.

    ``save_heatmap(path)`` writes a log-scale PNG of the visit counts over all envs and layouts.
    """

    def __init__(self, env) -> None:
        super().__init__()
        layout = _grid_layout(env)
        if layout is None:
            raise ValueError(f"{env!r}: the visitation tracker needs task_info() with grid and grid_key")
        self.env = env
        self.grid_key, self.wall = layout
        state = env.get_state()
        n, h, w, _ = state[self.grid_key].shape
        device = state[self.grid_key].device
        self.counts = torch.zeros(h, w, dtype=torch.float64, device=device)
        self.visited = torch.zeros(n, h, w, dtype=torch.bool, device=device)
        self.sums = torch.zeros(2, dtype=torch.float64, device=device)  # [episodes, sum of fractions]
        self._rows = torch.arange(n, device=device)
        self.free = self._free_cells(state)  # non-wall cells of each env's current layout
        self._prev_steps: Optional[torch.Tensor] = None

    def _free_cells(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        return (state[self.grid_key][..., 0] != self.wall).sum((1, 2)).clamp(min=1)

    def on_step(self) -> bool:
        state = self.env.get_state()
        x, y = state["agent_pos"][:, 0], state["agent_pos"][:, 1]
        self.counts.index_put_((y, x), torch.ones_like(x, dtype=torch.float64), accumulate=True)
        steps = state.get("step_count")
        if steps is not None and self._prev_steps is not None:
            # An env whose step counter went down was auto-reset this step: its episode ended.
            ended = steps < self._prev_steps
            frac = self.visited.sum((1, 2)) / self.free
            self.sums += torch.stack([ended.sum().double(), (frac * ended).sum().double()])
            self.visited &= ~ended[:, None, None]
            self.free = torch.where(ended, self._free_cells(state), self.free)
        if steps is not None:
            self._prev_steps = steps.clone()
        self.visited[self._rows, y, x] = True
        return True

    def on_rollout_end(self, metrics: dict[str, float]) -> bool:
        episodes, total = self.sums.tolist()
        self.sums.zero_()
        metrics["explore/episode_cells_visited"] = total / episodes if episodes > 0 else float("nan")
        free = self.env.get_state()[self.grid_key][0, ..., 0] != self.wall
        metrics["explore/cells_ever_visited"] = float(((self.counts > 0) & free).sum() / free.sum().clamp(min=1))
        return True

    def save_heatmap(self, path: str | os.PathLike, title: str = "") -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        counts = self.counts.cpu().numpy()
        fig, ax = plt.subplots(figsize=(5, 4.5))
        image = ax.imshow(counts + 1, norm=matplotlib.colors.LogNorm(), cmap="viridis", origin="upper")
        fig.colorbar(image, ax=ax, label="visits + 1 (log scale)")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title(title or "state visitation (all envs)")
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"counts": self.counts.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if state.get("counts") is not None and state["counts"].shape == self.counts.shape:
            self.counts.copy_(state["counts"])
