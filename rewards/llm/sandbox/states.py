"""States to validate reward code on: a seeded random walk in the env, and its last transition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rlcore.env import BatchedEnv


def _random_actions(space: Any, num_envs: int, gen: torch.Generator) -> torch.Tensor:
    """Seeded uniform random actions for a gymnasium space: int64[N] or float32[N, ...]."""
    kind = type(space).__name__
    if kind == "Discrete":
        start = int(getattr(space, "start", 0))
        return torch.randint(start, start + int(space.n), (num_envs,), generator=gen)
    if kind == "Box":
        low = torch.as_tensor(space.low, dtype=torch.float32).clamp(min=-1.0)
        high = torch.as_tensor(space.high, dtype=torch.float32).clamp(max=1.0)
        return low + (high - low) * torch.rand((num_envs, *low.shape), generator=gen)
    if kind == "MultiDiscrete":
        nvec = torch.as_tensor(space.nvec, dtype=torch.float64)
        return (torch.rand((num_envs, *nvec.shape), generator=gen, dtype=torch.float64) * nvec).long()
    if kind == "MultiBinary":
        return torch.randint(0, 2, (num_envs, *tuple(space.shape)), generator=gen)
    raise TypeError(f"cannot sample random actions for a {kind} action space")


def sample_states(env: BatchedEnv, num_steps: int = 8, seed: int = 0) -> dict[str, Any]:
    """Reset ``env`` (seed ``seed``), take ``num_steps`` seeded random actions, return the last transition.

    Returns ``{"state": dict[str, Tensor[N, ...]], "action": Tensor[N, ...], "next_state": ...}``
    with ``N = env.num_envs``: cloned ``env.get_state()`` before and after the last ``env.step``, on
    ``env.device``. The env is left wherever the random walk took it.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    env.reset(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    action = torch.empty(0)
    for step in range(num_steps):
        action = _random_actions(env.single_action_space, env.num_envs, gen).to(env.device)
        if step == num_steps - 1:
            state = {k: v.clone() for k, v in env.get_state().items()}
        env.step(action)
    next_state = {k: v.clone() for k, v in env.get_state().items()}
    if not state:
        raise ValueError(f"{env!r}.get_state() is empty; reward code needs privileged state")
    return {"state": state, "action": action, "next_state": next_state}

