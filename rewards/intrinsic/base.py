"""Shared pieces of exploration bonuses: the base class and observation featurisation.

Every bonus is a :class:`rlcore.reward.RewardModule`:

* ``compute(batch) -> float32[T, N]``: the *raw* bonus of each transition, scored on
  ``batch.next_obs`` (the state the agent reached), without gradients. Episodic bonuses process the
  ``[T, N]`` rollout in time order and advance their per-env memory as they go, resetting the memory
  of env ``i`` right after a step where ``batch.done[t, i]``; so ``compute`` must see each
  transition exactly once, in order. Scaling and combination (normalisation by the running std of
  intrinsic returns, coefficients, global x episodic products) are done by
  :class:`rewards.intrinsic.combine.IntrinsicReward`, not by the bonuses.
* ``update(batch) -> dict``: train the bonus's networks on the rollout; returns plain-float metrics.
* ``reset(mask)``: clear episodic memory of the envs in ``mask`` (bool[N]).
* ``state_dict()``: everything needed to resume (networks, optimiser, running stats, memory).

A bonus that cannot embed an observation space raises ``ValueError`` naming the bonus and the space.
"""

from __future__ import annotations

from typing import Optional

import gymnasium as gym
import torch
from torch import nn

from rlcore.batch import TransitionBatch
from rlcore.nets import make_encoder
from rlcore.reward import RewardModule, RewardRouting


class IntrinsicBonus(RewardModule):
    """Base class: holds the spaces and a name used in errors and logs."""

    routing = RewardRouting.INTRINSIC
    episodic = False
    #: short name used in logs (``reward/<name>_mean``) and errors
    name: str = "bonus"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space

    @property
    def state_keys(self) -> Optional[list[str]]:
        """Privileged-state entries the bonus hashes (its ``keyer``'s ``state_keys``), else ``None``."""
        return getattr(getattr(self, "keyer", None), "state_keys", None)

    @property
    def needs_state(self) -> bool:
        """A bonus hashing privileged state asks learners to record ``state``/``next_state`` (its keys only)."""
        return self.state_keys is not None

    def encoder(self, kind: str = "auto", out_dim: int = 64) -> nn.Module:
        """A fresh observation encoder for this bonus (errors name the bonus)."""
        return make_encoder(self.observation_space, kind, owner=f"bonus '{self.name}'", out_dim=out_dim)

    def compute(self, batch: TransitionBatch) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
