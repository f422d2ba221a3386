"""The reward-module contract: anything that produces a reward from transitions.

Extrinsic task rewards, exploration bonuses, learned reward models and compiled LLM reward code all
implement :class:`RewardModule`, so a learner can take any of them (or a combination) the same way.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from rlcore.batch import TransitionBatch


class RewardModule(nn.Module, abc.ABC):
    """Base class for reward modules.

    ``compute`` is called by learners once per rollout with a ``[T, N]`` batch (or with ``[N]`` for
    step-time use) and returns float32 rewards of the batch shape. ``update`` learns from the same
    data (a no-op for fixed rewards). ``reset(mask)`` clears per-episode memory for envs whose
    episode ended (``mask: bool[N]``). State round-trips through ``state_dict``.

    Attributes:
        intrinsic: True for exploration bonuses, which learners route to their intrinsic value
            stream; False for task rewards that replace or add to the environment's reward.
        episodic: for intrinsic rewards, whether their returns stop at episode ends (True for
            episodic bonuses) or run across episodes (False for global novelty, as in RND).
        needs_state: True for modules that read privileged state (``batch.state``: before the
            action, ``batch.next_state``: the true state after it, the finished episode's last
            state where an episode ended; dicts of ``[T, N, ...]`` tensors keyed as
            ``env.get_state()``). Learners and bridges then record it (see ``record_final_state`` in
            :mod:`rlcore.env`); otherwise both are ``None`` and nothing is recorded. A module may
            also set ``state_keys`` (a sequence of key names; absent or ``None`` means every key)
            to have only those entries recorded.
    """

    intrinsic: bool = True
    episodic: bool = False
    needs_state: bool = False

    @abc.abstractmethod
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        """Reward for each transition, float32 with ``batch.batch_shape``. Must not need grad."""

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        """Learn from a batch of transitions; return scalar metrics for logging."""
        return {}

    def reset(self, mask: torch.Tensor) -> None:
        """Forget per-episode memory of envs where ``mask`` is True."""


class NonFiniteRewardError(FloatingPointError):
    """A reward module produced NaN or Inf."""


def check_finite(values: torch.Tensor, name: str) -> None:
    """Raise :class:`NonFiniteRewardError` naming ``name`` if ``values`` holds NaN/Inf (one host sync)."""
    if not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values)).sum())
        raise NonFiniteRewardError(f"reward module '{name}' produced {bad} non-finite values (NaN or Inf)")
