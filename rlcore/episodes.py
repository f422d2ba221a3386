"""Episode statistics tracked on the device, read once per rollout (one host sync)."""

from __future__ import annotations

import math
from typing import Optional

import torch


class EpisodeTracker:
    """Running per-env return/length and sums over the episodes finished since the last ``pop``.

    All updates are tensor ops on the env's device; only :meth:`pop` synchronises.
    """

    def __init__(self, num_envs: int, device: torch.device) -> None:
        self.returns = torch.zeros(num_envs, device=device)
        self.lengths = torch.zeros(num_envs, device=device)
        # [finished episodes, sum of returns, sum of lengths, successes]
        self.sums = torch.zeros(4, device=device, dtype=torch.float64)

    def update(self, reward: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
               success: Optional[torch.Tensor]) -> None:
        self.returns += reward
        self.lengths += 1
        done = (terminated | truncated).float()
        succ = success.float() if success is not None else torch.zeros_like(done)
        self.sums += torch.stack([done.sum(), (self.returns * done).sum(), (self.lengths * done).sum(),
                                  (succ * done).sum()]).double()
        keep = 1.0 - done
        self.returns *= keep
        self.lengths *= keep

    def pop(self) -> dict[str, float]:
        """Means over episodes finished since the last call (NaN when none finished); resets the sums."""
        count, ret, length, succ = self.sums.tolist()
        self.sums.zero_()
        if count == 0:
            return {"episodes": 0, "ep_return_mean": math.nan, "ep_length_mean": math.nan, "success_rate": math.nan}
        return {"episodes": int(count), "ep_return_mean": ret / count, "ep_length_mean": length / count,
                "success_rate": succ / count}
