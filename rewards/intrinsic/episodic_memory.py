"""Per-env episodic visit counts over hashed states, on the device, for every env of the batch at once.

Used by :class:`rewards.intrinsic.episodic_counts.EpisodicCountBonus` (bonus ``1/sqrt(n_episode)``)
and :class:`rewards.intrinsic.noveld.NovelD` (its first-visit gate ``n_episode == 1``).

Layout: per env a ring of ``capacity`` hash keys ``int64[N, capacity]`` with their counts
``int64[N, capacity]`` and a fill counter ``int64[N]`` (distinct states inserted this episode). A
step checks all envs in one batched comparison of their key against their own row; there is no loop
over envs, only over the ``T`` steps of a rollout (the memory must advance in time order).

Semantics: the memory of env ``i`` is cleared right after a step where ``done[t, i]`` (only that
env), and by ``clear(mask)``. With ``start_keys`` the episode's first observation (the ``obs`` of the
step at which the env's memory is empty) is counted once too, so coming back to the start state is a
second visit. When an episode reaches more than ``capacity`` distinct states the oldest ring slot is
overwritten (its state would count as new again): a stated approximation for very long episodes.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from rewards.intrinsic.hashing import StateKeyer
from rlcore.batch import TransitionBatch
from rlcore.tensors import obs_flatten_leading


class EpisodicCounts(nn.Module):
    """Padded per-env memory of ``(key, count)`` pairs for the current episode.

    Args:
        capacity: distinct states remembered per env and episode.
    """

    def __init__(self, capacity: int = 1024) -> None:
        super().__init__()
        if capacity < 1:
            raise ValueError(f"episodic memory capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.register_buffer("keys", torch.zeros(0, self.capacity, dtype=torch.int64))
        self.register_buffer("counts", torch.zeros(0, self.capacity, dtype=torch.int64))
        self.register_buffer("fill", torch.zeros(0, dtype=torch.int64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in ("keys", "counts", "fill"):  # sized by the batch it last saw
            if prefix + name in state_dict:
                setattr(self, name, torch.zeros_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def ensure(self, num_envs: int, device: torch.device) -> None:
        """(Re)allocate an empty memory for ``num_envs`` envs on ``device`` if the shape changed."""
        if self.fill.shape != (num_envs,) or self.fill.device != device:
            self.keys = torch.zeros(num_envs, self.capacity, dtype=torch.int64, device=device)
            self.counts = torch.zeros(num_envs, self.capacity, dtype=torch.int64, device=device)
            self.fill = torch.zeros(num_envs, dtype=torch.int64, device=device)

    def clear(self, mask: torch.Tensor) -> None:
        """Forget the episodes of envs where ``mask`` (bool[N]) is True."""
        if self.fill.shape[0] == mask.shape[0]:
            self.fill = torch.where(mask.to(self.fill.device), torch.zeros_like(self.fill), self.fill)

    def visit(self, keys: torch.Tensor, where: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Count one visit of ``keys`` (int64[N]) in each env (only where ``where``); return the counts.

        Returns ``int64[N]``: the env's visits to its key this episode, this one included (0 where
        ``where`` is False).
        """
        n = keys.shape[0]
        rows = torch.arange(n, device=keys.device)
        if where is None:
            where = torch.ones(n, dtype=torch.bool, device=keys.device)
        cols = torch.arange(self.capacity, device=keys.device)
        valid = cols[None, :] < self.fill.clamp(max=self.capacity)[:, None]
        match = (self.keys == keys[:, None]) & valid                      # [N, capacity]
        found = match.any(dim=1)
        slot = torch.where(found, match.int().argmax(dim=1), self.fill % self.capacity)
        old = torch.where(found, self.counts[rows, slot], torch.zeros_like(slot))
        new_count = old + 1
        self.keys[rows, slot] = torch.where(where, keys, self.keys[rows, slot])
        self.counts[rows, slot] = torch.where(where, new_count, self.counts[rows, slot])
        self.fill = self.fill + (where & ~found).long()
        return torch.where(where, new_count, torch.zeros_like(new_count))

    def count_rollout(self, next_keys: torch.Tensor, done: torch.Tensor,
                      start_keys: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Advance through a ``[T, N]`` rollout in time order; ``int64[T, N]`` episodic counts of ``next_keys``.

        ``done[t, i]`` clears env ``i`` after step ``t``. ``start_keys[t]`` (optional) is counted for
        envs whose memory is empty at step ``t`` (the first observation of their episode).
        """
        T, N = next_keys.shape
        self.ensure(N, next_keys.device)
        out = torch.empty(T, N, dtype=torch.int64, device=next_keys.device)
        for t in range(T):
            if start_keys is not None:
                self.visit(start_keys[t], self.fill == 0)
            out[t] = self.visit(next_keys[t])
            self.fill = torch.where(done[t], torch.zeros_like(self.fill), self.fill)
        return out


@torch.no_grad()
def episodic_counts_of(memory: EpisodicCounts, keyer: StateKeyer, batch: TransitionBatch) -> torch.Tensor:
    """``int64[T, N]`` (or ``[N]``): episodic visit counts of ``batch.next_obs`` (or of its
    ``next_state`` entries, for a keyer over ``state_keys``); advances ``memory`` through the batch."""
    lead = batch.reward.dim()
    shape = batch.batch_shape
    T, N = (shape[0], shape[1]) if lead == 2 else (1, shape[0])
    next_keys = keyer(obs_flatten_leading(batch.next_obs, lead), batch.next_state, lead).reshape(T, N)
    start_keys = None
    if keyer.state_keys is None or batch.state is not None:
        start_keys = keyer(obs_flatten_leading(batch.obs, lead), batch.state, lead).reshape(T, N)
    return memory.count_rollout(next_keys, batch.done.reshape(T, N), start_keys).reshape(shape)
