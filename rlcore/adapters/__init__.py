"""Adapters between the library's batched-env contract and other RL ecosystems.

* :class:`~rlcore.adapters.gymnasium.GymnasiumBatchedEnv`: any gymnasium env id or ``VectorEnv``
  behind the :class:`~rlcore.env.BatchedEnv` contract (torch tensors, same-step auto-reset).
* :class:`~rlcore.adapters.sb3.SB3VecEnv`: any :class:`~rlcore.env.BatchedEnv` exposed as a
  stable-baselines3 ``VecEnv`` so SB3 algorithms train on it.
* :class:`~rlcore.adapters.sb3_rewards.RewardModuleCallback` and
  :class:`~rlcore.adapters.sb3_rewards.RewardModuleVecEnvWrapper`: any reward module (exploration
  bonus, learned reward) inside SB3 algorithms — see ``docs/sb3.md``.

The SB3 bridge is imported lazily so that ``rlcore.adapters.gymnasium`` does not pull in SB3.
"""

from __future__ import annotations

from typing import Any

from rlcore.adapters.gymnasium import GymnasiumBatchedEnv, make_gym_env

__all__ = ["GymnasiumBatchedEnv", "make_gym_env", "SB3VecEnv", "RewardModuleCallback", "RewardModuleVecEnvWrapper"]


def __getattr__(name: str) -> Any:
    if name == "SB3VecEnv":
        from rlcore.adapters.sb3 import SB3VecEnv

        return SB3VecEnv
    if name in ("RewardModuleCallback", "RewardModuleVecEnvWrapper"):
        from rlcore.adapters import sb3_rewards

        return getattr(sb3_rewards, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
