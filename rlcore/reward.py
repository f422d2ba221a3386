"""The reward-module contract: anything that produces a reward from transitions.

Extrinsic task rewards, exploration bonuses, learned reward models and compiled LLM reward code all
implement :class:`RewardModule`, so a learner can take any of them (or a combination) the same way.
How a learner uses a module's reward is one vocabulary, :class:`RewardRouting`, read with
:func:`routing_of` and applied with :func:`route_reward` (native PPO and both SB3 bridges share it).
Reward models with a differentiable ``forward`` (and the normalising and shaping wrappers) live in
:mod:`rlcore.reward_model`.
"""

from __future__ import annotations

import abc
from enum import Enum
from typing import Any, Iterable, Optional, Union

import torch
from torch import nn

from rlcore.batch import TransitionBatch


class RewardRouting(str, Enum):
    """Where a learner sends a reward module's reward.

    * ``INTRINSIC`` (``"intrinsic"``): a value stream (critic) of its own, with its own discount; the
      policy advantage is ``ext_coef * A_ext + int_coef * A_int`` (Burda et al. 2019, RND). The
      default for exploration bonuses.
    * ``ADD`` (``"add"``): ``env_reward + coef * module_reward`` is the reward of the (one) extrinsic
      stream.
    * ``REPLACE`` (``"replace"``): ``coef * module_reward`` replaces the env's reward (task rewards,
      learned reward models).
    """

    INTRINSIC = "intrinsic"
    ADD = "add"
    REPLACE = "replace"

    def __str__(self) -> str:
        return self.value


RoutingLike = Union[RewardRouting, str]

#: names used before the one vocabulary (SB3 bridges' ``mode=``), for the hint in parse errors
_RENAMED = {"separate_value": RewardRouting.INTRINSIC, "add_to_reward": RewardRouting.ADD,
            "replace_reward": RewardRouting.REPLACE}


def parse_routing(value: RoutingLike, allowed: Optional[Iterable[RoutingLike]] = None,
                  name: str = "routing") -> RewardRouting:
    """``value`` (a :class:`RewardRouting` or its string value) as a :class:`RewardRouting`.

    ``allowed`` restricts the accepted routings (default: all). Raises ``ValueError`` naming ``name``,
    the bad value and the allowed values (with the new name for a value of the old vocabulary).
    """
    options = list(RewardRouting) if allowed is None else [RewardRouting(a) for a in allowed]
    routing: Optional[RewardRouting] = None
    if isinstance(value, RewardRouting):
        routing = value
    elif isinstance(value, str):
        routing = RewardRouting._value2member_map_.get(value)  # type: ignore[assignment]
    if routing is None or routing not in options:
        names = ", ".join(repr(o.value) for o in options)
        hint = f" ({value!r} is now {_RENAMED[value].value!r})" if isinstance(value, str) and value in _RENAMED else ""
        raise ValueError(f"{name} must be one of {names}; got {value!r}{hint}")
    return routing


def routing_of(module: Any) -> RewardRouting:
    """A reward module's :class:`RewardRouting`: its ``routing`` attribute, ``INTRINSIC`` if it has none.

    A module still setting the removed ``intrinsic`` flag raises ``TypeError`` rather than being
    routed by a default it did not ask for.
    """
    name = getattr(module, "name", None) or type(module).__name__
    if hasattr(module, "intrinsic"):
        raise TypeError(f"reward module '{name}' sets 'intrinsic', which was replaced by 'routing': use "
                        "routing = RewardRouting.INTRINSIC (was intrinsic=True) or RewardRouting.REPLACE / ADD "
                        "(was intrinsic=False)")
    return parse_routing(getattr(module, "routing", RewardRouting.INTRINSIC), name=f"reward module '{name}' routing")


def route_reward(routing: RoutingLike, env_reward: torch.Tensor, module_reward: torch.Tensor,
                 coef: float = 1.0) -> torch.Tensor:
    """The reward of the learner's extrinsic stream under ``routing``.

    Args:
        routing: a :class:`RewardRouting` (or its value).
        env_reward: float32[T, N] (or any shape), the environment's reward.
        module_reward: float32 of the same shape, the module's reward (after any normalisation).
        coef: scale of the module's reward.

    Returns float32 of that shape: ``env_reward + coef * module_reward`` (``ADD``),
    ``coef * module_reward`` (``REPLACE``), or ``env_reward`` unchanged (``INTRINSIC``: the module's
    reward feeds a value stream of its own, not this one). ``coef == 1`` does not multiply, so results
    are bit-identical to using the module's reward directly.
    """
    routing = parse_routing(routing)
    if routing is RewardRouting.INTRINSIC:
        return env_reward
    scaled = module_reward if coef == 1.0 else coef * module_reward
    return env_reward + scaled if routing is RewardRouting.ADD else scaled


class RewardModule(nn.Module, abc.ABC):
    """Base class for reward modules.

    ``compute`` is called by learners once per rollout with a ``[T, N]`` batch (or with ``[N]`` for
    step-time use) and returns float32 rewards of the batch shape. ``update`` learns from the same
    data (a no-op for fixed rewards). ``reset(mask)`` clears per-episode memory for envs whose
    episode ended (``mask: bool[N]``). State round-trips through ``state_dict``.

    Attributes:
        routing: a :class:`RewardRouting`, how learners use the reward (see :func:`route_reward`):
            ``INTRINSIC`` (default; exploration bonuses) for a value stream of its own, ``ADD`` to add
            it to the environment's reward, ``REPLACE`` to replace the environment's reward (task
            rewards, learned reward models). Read it with :func:`routing_of`.
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

    routing: RewardRouting = RewardRouting.INTRINSIC
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
