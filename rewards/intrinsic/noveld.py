"""NovelD (Zhang et al. 2021, "NovelD: A Simple yet Effective Exploration Criterion").

The bonus rewards crossing the boundary from explored to unexplored regions, once per episode:

    b(s, s') = max(N(s') - alpha * N(s), 0) * 1[N_e(s') = 1]

with ``N`` the RND novelty (the L2 norm of the predictor's error, as in the paper's code, from an
:class:`rewards.intrinsic.rnd.RND` held inside), ``alpha`` = 0.5 (paper) and ``N_e(s')`` the count of
``s'`` in the current episode (the "episodic restriction on intrinsic reward": only the first visit
of a state in an episode is rewarded).

Episodic memory: per env a ring of ``capacity`` hashed states (``int64[N, capacity]``) with a fill
counter ``int64[N]``; at each step of the ``[T, N]`` rollout all envs are checked at once (one
batched comparison against their memories) and the reached state is inserted where it was new. The
memory of env ``i`` is cleared right after a step where ``batch.done[t, i]`` (only that env), and by
``reset(mask)``. The first observation of an episode (``batch.obs`` at the step where the env's
memory is empty) is inserted too, so returning to the start state is not a first visit. States are
hashed as in ``rewards.intrinsic.counts`` (exact for symbolic observations, SimHash for float Box
observations, or privileged ``state_keys``).

Deviations, stated: when an episode reaches more than ``capacity`` distinct states the oldest are
overwritten (and could be rewarded again); hash collisions (about ``2^-62`` per pair of distinct
keys) would suppress a first-visit reward. ``episodic`` (whether the intrinsic return stops at
episode ends) defaults to True as in the paper's IMPALA setup, where one discount applies to the sum
of rewards; set it False to treat the bonus as a global one.
"""

from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import torch

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.hashing import StateKeyer
from rewards.intrinsic.rnd import RND, bonus_metrics, cat_obs, check_obs_space, flat_obs
from rlcore.batch import TransitionBatch


class NovelD(IntrinsicBonus):
    """NovelD bonus: RND novelty difference, gated to the first visit of a state in the episode.

    Args:
        observation_space, action_space: single-env spaces (the action space is not used).
        alpha: scale of the novelty of the state left (paper: 0.5).
        feature_dim, hidden_dim, encoder, lr, epochs, minibatch_size, update_proportion, normalize_obs,
            obs_clip: the inner :class:`~rewards.intrinsic.rnd.RND`.
        hash_mode, simhash_bits, state_keys: how states are hashed for the episodic memory (see
            :class:`~rewards.intrinsic.counts.CountBonus`).
        capacity: states remembered per env and episode.
        episodic: whether learners stop the intrinsic return at episode ends.
    """

    name = "noveld"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, alpha: float = 0.5,
                 feature_dim: int = 64, hidden_dim: int = 128, encoder: str = "auto", lr: float = 1e-4,
                 epochs: int = 4, minibatch_size: int = 1024, update_proportion: float = 0.25,
                 normalize_obs: bool = True, obs_clip: float = 5.0, hash_mode: str = "auto", simhash_bits: int = 32,
                 state_keys: Optional[Sequence[str]] = None, capacity: int = 1024, episodic: bool = True) -> None:
        super().__init__(observation_space, action_space)
        owner = f"bonus '{self.name}'"
        if capacity < 1:
            raise ValueError(f"{owner}: capacity must be >= 1, got {capacity}")
        check_obs_space(observation_space, owner, encoder)
        self.rnd = RND(observation_space, action_space, feature_dim=feature_dim, hidden_dim=hidden_dim,
                       encoder=encoder, lr=lr, epochs=epochs, minibatch_size=minibatch_size,
                       update_proportion=update_proportion, normalize_obs=normalize_obs, obs_clip=obs_clip)
        self.keyer = StateKeyer(observation_space, owner, mode=hash_mode, k=simhash_bits, state_keys=state_keys)
        self.alpha, self.capacity, self.episodic = float(alpha), int(capacity), bool(episodic)
        self.register_buffer("memory", torch.zeros(0, self.capacity, dtype=torch.int64))
        self.register_buffer("fill", torch.zeros(0, dtype=torch.int64))
        self._last_bonus = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in ("memory", "fill"):  # per-env memory is sized by the batch it last saw
            if prefix + key in state_dict:
                setattr(self, key, torch.zeros_like(state_dict[prefix + key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _ensure_memory(self, n: int, device: torch.device) -> None:
        if self.fill.shape != (n,) or self.fill.device != device:
            self.memory = torch.zeros(n, self.capacity, dtype=torch.int64, device=device)
            self.fill = torch.zeros(n, dtype=torch.int64, device=device)

    def reset(self, mask: torch.Tensor) -> None:
        if self.fill.shape[0] == mask.shape[0]:
            self.fill = torch.where(mask.to(self.fill.device), torch.zeros_like(self.fill), self.fill)

    def _insert(self, keys: torch.Tensor, where: torch.Tensor) -> None:
        """Write ``keys[i]`` into env ``i``'s ring where ``where[i]``; advance its fill counter."""
        rows = torch.arange(keys.shape[0], device=keys.device)
        slot = self.fill % self.capacity
        self.memory[rows, slot] = torch.where(where, keys, self.memory[rows, slot])
        self.fill = self.fill + where.long()

    @torch.no_grad()
    def first_visits(self, batch: TransitionBatch) -> torch.Tensor:
        """``bool[T, N]`` (or ``[N]``): ``s'`` was not yet in the env's memory; advances the memory."""
        lead = batch.reward.dim()
        shape = batch.batch_shape
        T, N = (shape[0], shape[1]) if lead == 2 else (1, shape[0])
        next_keys = self.keyer(flat_obs(batch.next_obs, lead), batch.next_state, lead).reshape(T, N)
        start_keys = None
        if self.keyer.state_keys is None or batch.state is not None:
            start_keys = self.keyer(flat_obs(batch.obs, lead), batch.state, lead).reshape(T, N)
        done = batch.done.reshape(T, N)
        self._ensure_memory(N, next_keys.device)
        cols = torch.arange(self.capacity, device=next_keys.device)
        first = torch.empty(T, N, dtype=torch.bool, device=next_keys.device)
        for t in range(T):
            if start_keys is not None:
                self._insert(start_keys[t], self.fill == 0)            # the episode's first observation
            k = next_keys[t]
            valid = cols[None, :] < self.fill.clamp(max=self.capacity)[:, None]
            new = ~((self.memory == k[:, None]) & valid).any(dim=1)    # [N], all envs in one comparison
            first[t] = new
            self._insert(k, new)
            self.fill = torch.where(done[t], torch.zeros_like(self.fill), self.fill)
        return first.reshape(shape)

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        lead = batch.reward.dim()
        obs, next_obs = flat_obs(batch.obs, lead), flat_obs(batch.next_obs, lead)
        self.rnd.obs_norm.update(next_obs)
        novelty = self.rnd.novelty(cat_obs(next_obs, obs), squared=False)
        b = novelty.shape[0] // 2
        diff = (novelty[:b] - self.alpha * novelty[b:]).clamp(min=0).reshape(batch.batch_shape)
        bonus = diff * self.first_visits(batch).float()
        self._last_bonus = bonus
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        loss = self.rnd.fit(flat_obs(batch.next_obs, batch.reward.dim()))
        return {"loss": float(loss), **bonus_metrics(self._last_bonus)}
