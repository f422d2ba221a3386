"""Episodic count bonus ``beta / sqrt(n_episode(s'))``: novelty within the current episode only.

``n_episode(s')`` counts the visits of the hashed state ``s'`` since the env's episode began (the
first observation of the episode included), so the bonus is ``beta`` on a state's first visit in an
episode and decays as the agent keeps returning to it; it starts afresh every episode. This is the
episodic count term of NovelD's episodic restriction and of E3B's tabular special case (with one-hot
features E3B's bonus is ``1/(lambda + n)``), and the "episodic counts" studied in "A Study of Global and
Episodic Bonuses for Exploration in Contextual MDPs" (Henaff et al. 2023), which found it strong on
procedurally generated MiniGrid tasks, where every episode is a new layout and global counts carry over
poorly.

States are hashed as in :class:`rewards.intrinsic.counts.CountBonus` (exact for symbolic
observations, SimHash for float Box observations, or privileged ``state_keys``); counts live in the
padded per-env memory of :class:`rewards.intrinsic.episodic_memory.EpisodicCounts` (reset per env at
its own episode ends, inside the batch).
"""

from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import torch

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.episodic_memory import EpisodicCounts, episodic_counts_of
from rewards.intrinsic.hashing import StateKeyer
from rewards.intrinsic.rnd import bonus_metrics
from rlcore.batch import TransitionBatch


class EpisodicCountBonus(IntrinsicBonus):
    """``beta / sqrt(n)`` with ``n`` the visits of the reached state in the current episode.

    Args:
        observation_space, action_space: single-env spaces (the action space is not used).
        beta: bonus scale.
        hash_mode, simhash_bits, state_keys: how states are hashed (see ``CountBonus``).
        capacity: distinct states remembered per env and episode.
        seed: seed of the SimHash projection.
    """

    name = "episodic_counts"
    episodic = True

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, beta: float = 1.0,
                 hash_mode: str = "auto", simhash_bits: int = 32, state_keys: Optional[Sequence[str]] = None,
                 capacity: int = 1024, seed: int = 0) -> None:
        super().__init__(observation_space, action_space)
        self.beta = float(beta)
        self.keyer = StateKeyer(observation_space, f"bonus '{self.name}'", mode=hash_mode, k=simhash_bits,
                                state_keys=state_keys, seed=seed)
        self.memory = EpisodicCounts(capacity)
        self._last_bonus: Optional[torch.Tensor] = None

    def reset(self, mask: torch.Tensor) -> None:
        self.memory.clear(mask)

    @torch.no_grad()
    def counts(self, batch: TransitionBatch) -> torch.Tensor:
        """``int64[T, N]`` (or ``[N]``): episodic visit counts of ``next_obs``; advances the memory."""
        return episodic_counts_of(self.memory, self.keyer, batch)

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        bonus = self.beta / self.counts(batch).float().sqrt()
        self._last_bonus = bonus
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        return bonus_metrics(self._last_bonus)
