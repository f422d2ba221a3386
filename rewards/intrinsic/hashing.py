"""State hashing on the device, for count-based bonuses and episodic first-visit memories.

Everything here is tensor ops on the batch's device (no Python loop over samples, no host sync):

* :class:`RowHasher`: integer rows ``int64[B, D]`` -> 62-bit keys ``int64[B]``. Two independent
  universal hashes ``h_j = (sum_d (v_d * r_jd mod p)) mod p`` with random multipliers ``r_jd < p``,
  ``p = 2^31 - 1``, packed as ``h_1 * 2^31 + h_2``. Each value ``v_d`` is first reduced to its low
  32 bits, so products stay below ``2^63`` and nothing relies on integer overflow. Two different
  rows collide with probability about ``1 / p^2`` (for random multipliers), i.e. never in practice.
* :func:`exact_rows`: the integer rows that identify a symbolic observation exactly (MiniGrid
  ``image`` bytes plus ``direction``, a Discrete index, an integer Box, or the bit patterns of a
  float Box) or a privileged-state entry (e.g. ``agent_pos``).
* :class:`SimHash`: Tang et al. 2017 ("#Exploration: A Study of Count-Based Exploration for Deep
  Reinforcement Learning"): ``code(s) = sign(A g(s))`` with ``A`` a fixed ``k x D`` Gaussian matrix
  and ``g`` the flattened observation; the ``k`` sign bits are packed into an integer row.
* :func:`occurrence_rank`: for keys in processing order, how many earlier entries share the key —
  lets a count table be updated for a whole ``[T, N]`` rollout in one pass while every transition
  still sees the count "in time order".
"""

from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import torch
from torch import nn

from rlcore.nets import is_grid_space
from rlcore.tensors import Obs, flatten_leading

PRIME = (1 << 31) - 1
_LOW32 = (1 << 32) - 1


class RowHasher(nn.Module):
    """``int64[B, D] -> int64[B]`` non-negative 62-bit keys (see the module docstring).

    Rows of any width ``D`` are accepted: multipliers are drawn for ``max_width`` columns from a
    fixed seed (so keys are identical across processes and devices) and a wider row raises.
    """

    def __init__(self, max_width: int = 4096, seed: int = 0x5EED) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        mult = torch.randint(1, PRIME, (2, int(max_width)), generator=g, dtype=torch.int64)
        self.register_buffer("multipliers", mult, persistent=False)

    @torch.no_grad()
    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        rows = rows.reshape(rows.shape[0], -1).to(torch.int64) & _LOW32   # [B, D], values < 2^32
        width = rows.shape[1]
        if width > self.multipliers.shape[1]:
            raise ValueError(f"RowHasher: rows of width {width} exceed max_width {self.multipliers.shape[1]}")
        mult = self.multipliers[:, :width].to(rows.device)               # [2, D], values < 2^31
        # each product < 2^63; reduce before summing so the sum of D terms stays < D * 2^31
        h = ((rows.unsqueeze(0) * mult.unsqueeze(1)) % PRIME).sum(-1) % PRIME  # [2, B]
        return h[0] * (1 << 31) + h[1]


def exact_rows(space: gym.Space, obs: Obs, owner: str) -> torch.Tensor:
    """Integer rows ``int64[B, D]`` identifying each observation of a flat ``[B, ...]`` batch exactly."""
    if is_grid_space(space):
        image = obs["image"]
        parts = [image.reshape(image.shape[0], -1).to(torch.int64)]
        if "direction" in obs:
            parts.append(obs["direction"].reshape(image.shape[0], -1).to(torch.int64))
        return torch.cat(parts, dim=1)
    if isinstance(space, gym.spaces.Discrete):
        return obs.reshape(-1, 1).to(torch.int64)
    if isinstance(space, gym.spaces.Box):
        return value_rows(obs)
    raise ValueError(f"{owner} cannot hash observation space {space}: exact hashing supports Box, "
                     "Discrete and MiniGrid dict observations")


def value_rows(x: torch.Tensor) -> torch.Tensor:
    """``[B, ...]`` tensor -> ``int64[B, D]``: integers as they are, floats by their bit patterns."""
    x = x.reshape(x.shape[0], -1)
    if x.dtype.is_floating_point:
        x = x.float() + 0.0  # -0.0 -> +0.0, so the two zeros share a key
        return x.contiguous().view(torch.int32).to(torch.int64)
    return x.to(torch.int64)


class SimHash(nn.Module):
    """SimHash codes (Tang et al. 2017): ``k`` sign bits of a fixed Gaussian projection.

    ``forward(x: float[B, D]) -> int64[B, ceil(k / 62)]``: bits packed 62 per column (so ``k <= 62``
    gives one exact integer code). Near-identical inputs get the same code unless they straddle a
    hyperplane; distant inputs differ in about ``k * angle / pi`` bits.
    """

    def __init__(self, input_dim: int, k: int = 32, seed: int = 0) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"SimHash: k must be >= 1, got {k}")
        g = torch.Generator().manual_seed(int(seed))
        self.k = int(k)
        self.register_buffer("projection", torch.randn(input_dim, self.k, generator=g))
        cols = -(-self.k // 62)
        weights = torch.zeros(cols * 62, dtype=torch.int64)
        weights[: self.k] = 2 ** (torch.arange(self.k) % 62)
        self.register_buffer("bit_weights", weights.reshape(cols, 62), persistent=False)

    @torch.no_grad()
    def bits(self, x: torch.Tensor) -> torch.Tensor:
        """``bool[B, k]``: the sign bits (``A g(s) > 0``)."""
        return (x.reshape(x.shape[0], -1).float() @ self.projection) > 0

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bits = self.bits(x).to(torch.int64)                                  # [B, k]
        cols = self.bit_weights.shape[0]
        padded = torch.nn.functional.pad(bits, (0, cols * 62 - self.k))      # [B, cols * 62]
        return (padded.reshape(-1, cols, 62) * self.bit_weights).sum(-1)     # [B, cols]


def state_rows(state: Optional[dict[str, torch.Tensor]], keys: Sequence[str], lead: int, owner: str) -> torch.Tensor:
    """Integer rows from privileged-state entries ``keys`` (e.g. ``["agent_pos", "agent_dir"]``)."""
    if state is None:
        raise ValueError(f"{owner} hashes state keys {list(keys)} but the batch has no next_state; "
                         "collect next_state from env.get_state() or use observation hashing (state_keys=None)")
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"{owner}: next_state has no {missing}; it has {sorted(state)}")
    parts = []
    for k in keys:
        v = state[k]
        parts.append(value_rows(flatten_leading(v, lead) if v.dim() > lead else v.reshape(-1, 1)))
    return torch.cat(parts, dim=1)


def occurrence_rank(keys: torch.Tensor) -> torch.Tensor:
    """``int64[B]``: for each entry, the number of earlier entries (lower index) with the same key."""
    n = keys.shape[0]
    sorted_keys, perm = torch.sort(keys, stable=True)
    pos = torch.arange(n, device=keys.device)
    starts = torch.ones(n, dtype=torch.bool, device=keys.device)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group_start = torch.cummax(torch.where(starts, pos, torch.zeros_like(pos)), dim=0).values
    rank = torch.empty_like(pos)
    rank[perm] = pos - group_start
    return rank


class StateKeyer(nn.Module):
    """Observations (or privileged-state entries) of a flat batch -> ``int64[B]`` hash keys.

    Args:
        space: single-env observation space.
        owner: name used in errors (e.g. ``"bonus 'counts'"``).
        mode: ``"exact"`` (hash the full observation: MiniGrid image bytes + direction, a Discrete
            index, Box values/bit patterns), ``"simhash"`` (SimHash of the flattened Box
            observation, ``k`` bits) or ``"auto"`` (SimHash for float Box spaces, exact otherwise).
        k: SimHash bits.
        state_keys: if given, hash these entries of the batch's ``next_state`` (e.g.
            ``["agent_pos"]`` to count agent positions) instead of the observation.
        seed: seed of the SimHash projection.
    """

    def __init__(self, space: gym.Space, owner: str, mode: str = "auto", k: int = 32,
                 state_keys: Optional[Sequence[str]] = None, seed: int = 0) -> None:
        super().__init__()
        if mode not in ("auto", "exact", "simhash"):
            raise ValueError(f"{owner}: hash mode must be 'auto', 'exact' or 'simhash', got {mode!r}")
        self.owner, self.space = owner, space
        self.state_keys = list(state_keys) if state_keys else None
        is_box = isinstance(space, gym.spaces.Box)
        if self.state_keys is None:
            if not (is_grid_space(space) or isinstance(space, gym.spaces.Discrete) or is_box):
                raise ValueError(f"{owner} cannot hash observation space {space}: it supports Box, Discrete and "
                                 "MiniGrid dict observations (or state_keys= to hash privileged state)")
            if mode == "auto":
                mode = "simhash" if is_box and space.dtype is not None and space.dtype.kind == "f" else "exact"
            if mode == "simhash" and not is_box:
                raise ValueError(f"{owner}: SimHash needs a Box observation space, got {space}")
        elif mode == "simhash":
            raise ValueError(f"{owner}: state_keys are hashed exactly; use mode='exact' or 'auto' with them")
        self.mode = "exact" if self.state_keys is not None else mode
        self.simhash = SimHash(int(torch.tensor(space.shape).prod()), k=k, seed=seed) if self.mode == "simhash" else None
        self.hasher = RowHasher()

    @torch.no_grad()
    def forward(self, obs: Obs, state: Optional[dict[str, torch.Tensor]] = None, lead: int = 1) -> torch.Tensor:
        """Keys ``int64[B]`` of a batch flattened to one leading dim (``state`` still has ``lead`` dims)."""
        if self.state_keys is not None:
            rows = state_rows(state, self.state_keys, lead, self.owner)
        elif self.simhash is not None:
            rows = self.simhash(obs)
        else:
            rows = exact_rows(self.space, obs, self.owner)
        return self.hasher(rows)
