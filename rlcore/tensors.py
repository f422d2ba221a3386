"""Small helpers for observations that are a tensor or a flat dict of tensors."""

from __future__ import annotations

from typing import Callable, Union

import torch

#: An observation batch: one tensor, or a flat dict of tensors sharing the leading batch dims.
Obs = Union[torch.Tensor, dict[str, torch.Tensor]]


def obs_map(fn: Callable[[torch.Tensor], torch.Tensor], obs: Obs) -> Obs:
    """Apply ``fn`` to the tensor, or to every tensor of the dict."""
    if isinstance(obs, dict):
        return {k: fn(v) for k, v in obs.items()}
    return fn(obs)


def obs_where(mask: torch.Tensor, a: Obs, b: Obs) -> Obs:
    """Row-wise select: ``a`` where ``mask[i]`` else ``b``. ``mask: bool[N]``."""

    def select(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        m = mask.view(-1, *([1] * (x.dim() - 1)))
        return torch.where(m, x, y)

    if isinstance(a, dict):
        return {k: select(a[k], b[k]) for k in a}
    return select(a, b)


def obs_index(obs: Obs, index) -> Obs:
    """Index every tensor with the same index (e.g. a slice or a tensor of rows)."""
    return obs_map(lambda x: x[index], obs)


def obs_to(obs: Obs, device: torch.device | str) -> Obs:
    return obs_map(lambda x: x.to(device), obs)


def obs_clone(obs: Obs) -> Obs:
    return obs_map(lambda x: x.clone(), obs)


def obs_batch_size(obs: Obs) -> int:
    first = next(iter(obs.values())) if isinstance(obs, dict) else obs
    return int(first.shape[0])
