"""Reward models: reward modules with a differentiable ``forward``, and two composable wrappers.

:class:`RewardModel` separates the reward a network outputs with gradients (``forward``, what a
discriminator or preference reward net trains through) from the reward a learner consumes
(``compute``: ``forward`` under ``torch.no_grad()``), as the ``imitation`` library separates a reward
net's ``forward`` from ``predict``.

Two wrappers, each itself a :class:`RewardModel` around any :class:`~rlcore.reward.RewardModule`
(so they stack, e.g. ``NormalizedReward(PotentialShaping(net, phi))``):

* :class:`NormalizedReward`: the wrapped reward standardised by its running mean and std;
* :class:`PotentialShaping`: ``r + gamma * Phi(s') - Phi(s)``, potential-based shaping (Ng, Harada &
  Russell 1999, "Policy invariance under reward transformations").

A wrapper scores its inner module with ``forward`` when that is a :class:`RewardModel` (gradients reach
its parameters) and with ``compute`` otherwise, and forwards ``routing``, ``episodic``,
``needs_state``, ``state_keys``, ``update`` and ``reset`` to it; its ``state_dict`` holds the inner
module's (under ``inner.``) beside its own.
"""

from __future__ import annotations

import abc
from typing import Optional, Sequence

import torch
from torch import nn

from rlcore.batch import TransitionBatch
from rlcore.normalization import RunningMeanStd
from rlcore.reward import RewardModule, RewardRouting, RoutingLike, parse_routing, routing_of


class RewardModel(RewardModule):
    """A reward module whose reward is a differentiable function of the batch.

    Contract:

    * ``forward(batch) -> float32[*batch.batch_shape]`` (``[T, N]`` or ``[N]``) keeps the autograd
      graph, for losses that train the reward (discriminators, preference/Bradley-Terry reward nets);
    * ``compute(batch)`` is ``forward`` under ``torch.no_grad()``: what learners call, no grad;
    * ``update(batch)`` (optional) trains the model and returns float metrics, as for any module.

    ``routing`` defaults to ``REPLACE``: a learned reward stands in for the env's reward.
    """

    routing: RewardRouting = RewardRouting.REPLACE

    @abc.abstractmethod
    def forward(self, batch: TransitionBatch) -> torch.Tensor:
        """Reward float32[*batch.batch_shape] for each transition, with gradients."""

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        with torch.no_grad():
            return self(batch)


def _module_name(module: nn.Module) -> str:
    name = getattr(module, "name", None)
    return name if isinstance(name, str) and name else type(module).__name__


class RewardWrapper(RewardModel):
    """Base of the wrappers: holds ``inner`` and forwards the contract's attributes to it.

    Args:
        inner: the wrapped reward module.
        routing: override of the inner module's routing (default: the inner module's).
    """

    def __init__(self, inner: RewardModule, routing: Optional[RoutingLike] = None) -> None:
        super().__init__()
        self.inner = inner
        self._routing = None if routing is None else parse_routing(routing, name=f"{type(self).__name__} routing")

    def inner_reward(self, batch: TransitionBatch) -> torch.Tensor:
        """The inner module's float32 reward: ``forward`` (with gradients) for a :class:`RewardModel`,
        ``compute`` otherwise."""
        inner = self.inner
        out = inner(batch) if isinstance(inner, RewardModel) else inner.compute(batch)
        return out.float()

    @property
    def routing(self) -> RewardRouting:  # type: ignore[override]
        return self._routing if self._routing is not None else routing_of(self.inner)

    @property
    def name(self) -> str:
        return _module_name(self.inner)

    @property
    def episodic(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner, "episodic", False))

    @property
    def needs_state(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner, "needs_state", False))

    @property
    def state_keys(self) -> Optional[Sequence[str]]:
        return getattr(self.inner, "state_keys", None)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        return self.inner.update(batch)

    def reset(self, mask: torch.Tensor) -> None:
        self.inner.reset(mask)


class NormalizedReward(RewardWrapper):
    """The wrapped reward standardised by running statistics: ``(r - mean) / std`` (``center=False``:
    ``r / std``), optionally clipped to ``[-clip, clip]``.

    Statistics (:class:`~rlcore.normalization.RunningMeanStd`, on the device, no host syncs) are
    updated in :meth:`compute` while the wrapper is in training mode, with the batch being scored,
    before it is normalised (as SB3's ``VecNormalize``). They are updated there and not in ``update``
    because re-scoring in ``update`` would run the inner module twice per batch, which advances the
    per-episode memory of episodic bonuses; and it works the same for per-rollout ``[T, N]`` batches
    (native PPO, the SB3 callback) and per-step ``[1, N]`` batches (the SB3 ``VecEnvWrapper``).
    ``forward`` normalises with the current statistics and leaves them alone, so losses computed
    through it do not move them; ``eval()`` freezes them for ``compute`` too. The statistics are
    buffers (``stats.mean``, ``stats.var``, ``stats.count``) in the ``state_dict``.

    Sets ``normalize = True``, so the SB3 bridges do not normalise a second time by default.

    Args:
        inner: the wrapped reward module.
        center: subtract the running mean (True) or only divide by the running std (False).
        clip: clip the normalised reward to ``[-clip, clip]`` (None: no clipping).
        epsilon: initial pseudo-count of the statistics.
        routing: override of the inner module's routing.
    """

    normalize = True

    def __init__(self, inner: RewardModule, center: bool = True, clip: Optional[float] = None, epsilon: float = 1e-4,
                 routing: Optional[RoutingLike] = None) -> None:
        super().__init__(inner, routing)
        self.center = bool(center)
        self.clip = None if clip is None else float(clip)
        self.stats = RunningMeanStd((), epsilon=epsilon)

    def _normalize(self, raw: torch.Tensor) -> torch.Tensor:
        if self.center:
            return self.stats.normalize(raw, self.clip)
        y = raw / (self.stats.std.to(raw.dtype) + 1e-8)
        return y.clamp(-self.clip, self.clip) if self.clip is not None else y

    def forward(self, batch: TransitionBatch) -> torch.Tensor:
        """float32[*batch.batch_shape]: the inner reward normalised by the current statistics (with gradients)."""
        return self._normalize(self.inner_reward(batch))

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        """float32[*batch.batch_shape], no grad; folds the batch's inner reward into the statistics first
        (training mode only)."""
        with torch.no_grad():
            raw = self.inner_reward(batch)
            if self.training:
                self.stats.update(raw)
            return self._normalize(raw)


class PotentialShaping(RewardWrapper):
    """Potential-based shaping of the wrapped reward (Ng, Harada & Russell 1999):
    ``r + gamma * Phi(s') - Phi(s)``.

    ``Phi`` maps a flat batch of observations (a tensor ``[B, ...]`` or a dict of them, as in
    ``batch.obs``) to potentials ``float[B]`` (or ``[B, 1]``); it may be learnable. ``s'`` is
    ``batch.next_obs``, the true next observation (the finished episode's last one where an episode
    ended). ``Phi(s')`` is taken as 0 where ``batch.terminated`` (absorbing terminal state) but kept
    where the episode was merely truncated, whose return the learner bootstraps. With ``gamma`` the
    learner's discount, the shaped reward has the same optimal policies (Ng et al.'s theorem); over an
    episode the shaping telescopes (``gamma = 1``: ``sum(r) - Phi(s_0)`` when it terminates,
    ``sum(r) + Phi(s_T) - Phi(s_0)`` when truncated).

    Args:
        inner: the wrapped reward module.
        potential: ``Phi``, an ``nn.Module`` on observations (its parameters are this module's
            ``potential.*``).
        gamma: discount of the shaping term (use the learner's ``gamma`` for policy invariance).
        routing: override of the inner module's routing.
    """

    def __init__(self, inner: RewardModule, potential: nn.Module, gamma: float = 0.99,
                 routing: Optional[RoutingLike] = None) -> None:
        super().__init__(inner, routing)
        if not 0.0 <= float(gamma) <= 1.0:
            raise ValueError(f"PotentialShaping: gamma must be in [0, 1], got {gamma!r}")
        self.potential = potential
        self.gamma = float(gamma)

    def potentials(self, batch: TransitionBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Phi(s), Phi(s'))``, float32[*batch.batch_shape] each; ``Phi(s')`` is 0 where terminated."""
        flat = batch.flatten()  # [T, N] or [N] -> [B]
        shape = batch.batch_shape
        phi = self.potential(flat.obs).float().reshape(shape)
        phi_next = self.potential(flat.next_obs).float().reshape(shape)
        phi_next = phi_next.masked_fill(batch.terminated, 0.0)
        return phi, phi_next

    def forward(self, batch: TransitionBatch) -> torch.Tensor:
        """float32[*batch.batch_shape]: ``r + gamma * Phi(s') - Phi(s)`` (with gradients)."""
        phi, phi_next = self.potentials(batch)
        return self.inner_reward(batch) + self.gamma * phi_next - phi
