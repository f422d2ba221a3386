"""Small helpers for observations that are a tensor or a flat dict of tensors."""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch

#: An observation batch: one tensor, or a flat dict of tensors sharing the leading batch dims.
Obs = Union[torch.Tensor, dict[str, torch.Tensor]]


def obs_map(fn: Callable[[torch.Tensor], torch.Tensor], obs: Obs) -> Obs:
    """Apply ``fn`` to the tensor, or to every tensor of the dict."""
    if isinstance(obs, dict):
        return {k: fn(v) for k, v in obs.items()}
    return fn(obs)


def flatten_leading(x: torch.Tensor, n_dims: int) -> torch.Tensor:
    """Merge the ``n_dims`` leading dims into one (a reshape): ``[T, N, ...]`` -> ``[T * N, ...]`` for 2."""
    return x.reshape(-1, *x.shape[n_dims:])


def obs_flatten_leading(obs: Obs, n_dims: int) -> Obs:
    """:func:`flatten_leading` of the tensor, or of every tensor of the dict."""
    return obs_map(lambda x: flatten_leading(x, n_dims), obs)


def obs_index(obs: Obs, index) -> Obs:
    """Index every tensor with the same index (e.g. a slice or a tensor of rows)."""
    return obs_map(lambda x: x[index], obs)


def obs_cat(parts: Sequence[Obs], dim: int = 0) -> Obs:
    """Concatenate observation batches (all tensors, or all dicts with the same keys) along ``dim``."""
    first = parts[0]
    if isinstance(first, dict):
        return {k: torch.cat([p[k] for p in parts], dim) for k in first}
    return torch.cat(list(parts), dim)


def obs_clone(obs: Obs) -> Obs:
    return obs_map(lambda x: x.clone(), obs)
