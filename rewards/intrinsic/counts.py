"""Count-based bonus ``beta / sqrt(n(s'))`` over hashed states, counted on the device.

Hashing (``rewards.intrinsic.hashing``):

* symbolic observations are hashed exactly: a MiniGrid observation by its full ``image`` bytes plus
  ``direction``, a Discrete observation by its index, an integer Box by its values; or, with
  ``state_keys=["agent_pos"]`` (say), by entries of the batch's privileged ``next_state``;
* continuous (float Box) observations by SimHash, as in Tang et al. 2017 ("#Exploration: A Study of
  Count-Based Exploration for Deep Reinforcement Learning"): ``phi(s) = sign(A g(s))`` with ``A`` a
  fixed ``k x D`` matrix of standard normal entries and ``g`` the flattened observation; bonus
  ``beta / sqrt(n(phi(s)))``.

Counts live in a fixed-size table ``int64[table_size]`` on the bonus's device. A state's 62-bit
hash key (two universal hashes mod ``2^31 - 1``, computed with tensor ops) picks the slot
``key mod table_size``. Collision behaviour, stated: distinct keys that land in the same slot share
one count (their bonus is lower than it should be); with ``S`` distinct states the chance that a
given state shares its slot is about ``S / table_size`` (default ``2^20`` slots, 8 MiB). Keys
themselves collide with probability ~``2^-62`` per pair. SimHash codes are the paper's granularity:
states with the same ``k`` sign bits are one "state" by design.

Counting semantics: counts are global (never reset) and are updated in ``compute``. The transitions
of a ``[T, N]`` rollout are counted once each, in time order (step ``t`` before ``t + 1``; within a
step, env ``0`` before env ``1``), and ``n`` *includes the current visit*: a state reached for the
first time scores ``beta / sqrt(1) = beta``, its second visit ``beta / sqrt(2)``, and so on. The whole
rollout is counted in one vectorised pass (sort by slot, rank within equal slots), without a loop
over time or envs.
"""

from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import torch

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.hashing import StateKeyer, occurrence_rank
from rlcore.batch import TransitionBatch
from rlcore.tensors import obs_flatten_leading


class CountBonus(IntrinsicBonus):
    """``beta / sqrt(n)`` with ``n`` the global visit count of the hashed state reached.

    Args:
        observation_space, action_space: single-env spaces (the action space is not used).
        beta: bonus scale (Tang et al. used 0.01-0.1 on unnormalised rewards; the combiner rescales).
        hash_mode: ``"auto"`` (SimHash for float Box observations, exact otherwise), ``"exact"`` or ``"simhash"``.
        simhash_bits: SimHash granularity ``k``.
        state_keys: hash these ``next_state`` entries (e.g. ``["agent_pos"]``) instead of observations.
        table_size: number of count slots.
        seed: seed of the SimHash projection.
    """

    name = "counts"
    episodic = False

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, beta: float = 1.0, hash_mode: str = "auto",
                 simhash_bits: int = 32, state_keys: Optional[Sequence[str]] = None, table_size: int = 1 << 20,
                 seed: int = 0) -> None:
        super().__init__(observation_space, action_space)
        owner = f"bonus '{self.name}'"
        if table_size < 1:
            raise ValueError(f"{owner}: table_size must be >= 1, got {table_size}")
        self.beta = float(beta)
        self.keyer = StateKeyer(observation_space, owner, mode=hash_mode, k=simhash_bits, state_keys=state_keys, seed=seed)
        self.register_buffer("counts", torch.zeros(int(table_size), dtype=torch.int64))

    def slots(self, batch: TransitionBatch) -> torch.Tensor:
        """``int64[B]``: table slots of the states reached, flattened in time-major order."""
        lead = batch.reward.dim()
        keys = self.keyer(obs_flatten_leading(batch.next_obs, lead), batch.next_state, lead)
        return keys % self.counts.shape[0]

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        slots = self.slots(batch)
        n = self.counts[slots] + occurrence_rank(slots) + 1        # visits so far, this one included
        self.counts.index_add_(0, slots, torch.ones_like(slots))
        return (self.beta / n.float().sqrt()).reshape(batch.batch_shape)

    @torch.no_grad()
    def count(self, batch: TransitionBatch) -> torch.Tensor:
        """Current counts ``int64[...]`` of the states reached in ``batch`` (does not count them)."""
        return self.counts[self.slots(batch)].reshape(batch.batch_shape)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        return {"states_seen": float((self.counts > 0).sum())}
