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

Feature source. A bonus that calls :meth:`IntrinsicBonus.set_features` with ``"state"`` computes its
bonus from privileged state (see :mod:`rewards.intrinsic.features`): its ``compute`` and ``update``
are then called with :func:`rewards.intrinsic.features.state_as_obs` of the batch, ``obs`` and
``next_obs`` replaced by the state entries it reads, and ``state_keys`` / ``needs_state`` ask the
learner for those entries. The substitution wraps the ``compute`` and ``update`` of every subclass
(:meth:`IntrinsicBonus.__init_subclass__`), so a bonus's own code reads observations either way.
"""

from __future__ import annotations

import functools
from typing import Optional

import gymnasium as gym
import torch
from torch import nn

from rewards.intrinsic.features import STATE_FEATURE_KEYS, bonus_encoder, resolve_features, state_as_obs
from rlcore.batch import TransitionBatch
from rlcore.reward import RewardModule, RewardRouting


def _reading_feature_source(method):
    """Wrap ``compute`` / ``update``: with ``features="state"`` the method gets :func:`state_as_obs` of the batch."""

    @functools.wraps(method)
    def wrapper(self, batch, *args, **kwargs):
        if self.features == "state":
            batch = state_as_obs(batch, f"bonus '{self.name}'")
        return method(self, batch, *args, **kwargs)

    wrapper._reads_feature_source = True
    return wrapper


class IntrinsicBonus(RewardModule):
    """Base class: holds the spaces, a name used in errors and logs, and where features come from."""

    routing = RewardRouting.INTRINSIC
    episodic = False
    #: short name used in logs (``reward/<name>_mean``) and errors
    name: str = "bonus"
    #: ``"obs"`` (networks read observations) or ``"state"`` (privileged state); see :meth:`set_features`
    features: str = "obs"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("compute", "update"):
            method = getattr(cls, name)
            if not getattr(method, "_reads_feature_source", False):
                setattr(cls, name, _reading_feature_source(method))

    def set_features(self, features: str) -> str:
        """Set where this bonus's features come from; returns ``"obs"`` or ``"state"``.

        ``features``: ``"obs"``, ``"state"`` (privileged information: the bonus reads
        :data:`~rewards.intrinsic.features.STATE_FEATURE_KEYS` of ``batch.state`` /
        ``batch.next_state`` in place of the observations) or ``"auto"`` (``"state"`` for symbolic-grid
        observations, else ``"obs"``); see :func:`rewards.intrinsic.features.resolve_features`.
        """
        self.features = resolve_features(features, self.observation_space, f"bonus '{self.name}'")
        return self.features

    @property
    def state_keys(self) -> Optional[list[str]]:
        """Privileged-state entries the bonus reads: those its ``keyer`` hashes and, with
        ``features="state"``, :data:`~rewards.intrinsic.features.STATE_FEATURE_KEYS`; ``None`` if none."""
        keys = list(getattr(getattr(self, "keyer", None), "state_keys", None) or [])
        if self.features == "state":
            keys += [k for k in STATE_FEATURE_KEYS if k not in keys]
        return keys or None

    @property
    def needs_state(self) -> bool:
        """A bonus reading privileged state asks learners to record ``state``/``next_state`` (its keys only)."""
        return self.state_keys is not None

    def encoder(self, kind: str = "auto", out_dim: Optional[int] = None) -> nn.Module:
        """A fresh first stage for this bonus's networks, for its feature source (errors name the bonus):
        :func:`rewards.intrinsic.features.bonus_encoder`, e.g. the MiniGrid CNN without pooling."""
        return bonus_encoder(self.observation_space, f"bonus '{self.name}'", self.features, kind, out_dim)

    def compute(self, batch: TransitionBatch) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError
