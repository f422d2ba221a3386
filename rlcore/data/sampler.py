"""Minibatch samplers over a dataset's transitions, drawing indices on the dataset's device.

A :class:`Sampler` returns ``int64[B]`` transition indices; :meth:`TrajectoryDataset.sample` turns
them into a :class:`~rlcore.batch.TransitionBatch`. Reweighting a dataset (by return, advantage,
...) is a sampler with per-transition weights; the learner's losses do not change.
"""

from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

import torch


@runtime_checkable
class Sampler(Protocol):
    """Draws minibatch indices. ``generator`` (on the sampler's device) makes draws reproducible."""

    def sample(self, batch_size: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """int64[batch_size] transition indices on the dataset's device."""
        ...


class UniformSampler:
    """Indices drawn uniformly with replacement from ``range(size)``."""

    def __init__(self, size: int, device: torch.device | str = "cpu") -> None:
        if int(size) <= 0:
            raise ValueError(f"UniformSampler needs a non-empty dataset, got size {size}")
        self.size, self.device = int(size), torch.device(device)

    def sample(self, batch_size: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        return torch.randint(self.size, (int(batch_size),), device=self.device, generator=generator)


class WeightedSampler:
    """Index ``i`` drawn with probability ``weights[i] / weights.sum()``, with replacement.

    Inverse-CDF sampling (``searchsorted`` on the cumulative weights in float64), so there is no
    limit on the number of transitions. ``weights: float[M]`` must be finite, non-negative and not
    all zero (checked once here, with a host sync).
    """

    def __init__(self, weights: torch.Tensor) -> None:
        if weights.dim() != 1 or weights.numel() == 0:
            raise ValueError(f"WeightedSampler: weights must be a non-empty 1-d tensor, got shape {tuple(weights.shape)}")
        w = weights.detach().double()
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("WeightedSampler: weights must be finite and non-negative")
        cdf = torch.cumsum(w, 0)
        if not float(cdf[-1]) > 0:
            raise ValueError("WeightedSampler: weights sum to zero")
        self.cdf, self.device = cdf, weights.device
        self.probabilities = w / cdf[-1]

    def sample(self, batch_size: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        u = torch.rand(int(batch_size), device=self.device, generator=generator, dtype=torch.float64) * self.cdf[-1]
        return torch.searchsorted(self.cdf, u, right=True).clamp_(max=self.cdf.numel() - 1)
