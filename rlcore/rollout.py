"""Rollout storage and generalised advantage estimation, all on the env's device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

import gymnasium as gym
import torch

from rlcore.batch import TransitionBatch
from rlcore.tensors import Obs

if TYPE_CHECKING:
    from rlcore.data.dataset import TrajectoryDataset


def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    terminated: torch.Tensor,
    done: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, "High-Dimensional Continuous Control
    Using Generalized Advantage Estimation").

    Args:
        rewards:     float32[T, N], reward received after the action at step t.
        values:      float32[T, N], V(s_t).
        next_values: float32[T, N], V(s_{t+1}) of the *true* next state (the final observation for
                     an env whose episode ended at t), so time-limit truncations bootstrap.
        terminated:  bool[T, N], s_{t+1} is terminal: its value is taken as 0.
        done:        bool[T, N], the episode ended at t (terminated or truncated): the advantage
                     recursion stops there. Pass all-False for a non-episodic stream.
        gamma, gae_lambda: discount and GAE lambda.

    Returns:
        advantages, returns (= advantages + values), both float32[T, N].
    """
    not_terminal = 1.0 - terminated.float()
    not_done = 1.0 - done.float()
    deltas = rewards + gamma * next_values * not_terminal - values
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = deltas[t] + gamma * gae_lambda * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values


def _alloc_like_space(space: gym.Space, lead: tuple[int, ...], device: torch.device) -> Obs:
    """Zero storage shaped ``lead + space.shape`` with the space's dtype, as a tensor or dict."""
    if isinstance(space, gym.spaces.Dict):
        return {k: _alloc_like_space(s, lead, device) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Discrete):
        return torch.zeros(lead, dtype=torch.int64, device=device)
    if isinstance(space, gym.spaces.Box):
        dtype = torch.from_numpy(space.sample()[None]).dtype
        if dtype == torch.float64:
            dtype = torch.float32
        return torch.zeros(lead + tuple(space.shape), dtype=dtype, device=device)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return torch.zeros(lead + tuple(space.shape), dtype=torch.int64, device=device)
    if isinstance(space, gym.spaces.MultiBinary):
        return torch.zeros(lead + tuple(space.shape), dtype=torch.int8, device=device)
    raise TypeError(f"cannot store observations of space {space}")


def module_needs_state(module: Any) -> bool:
    """Whether a reward module asks for privileged ``state``/``next_state`` in its batches
    (its ``needs_state`` attribute; False for ``None`` and for modules without the attribute)."""
    return module is not None and bool(getattr(module, "needs_state", False))


def select_state(state: dict[str, torch.Tensor], keys: Optional[Sequence[str]], owner: str) -> dict[str, torch.Tensor]:
    """The entries ``keys`` of ``state`` (all of them for ``keys=None``), as a new dict of the same tensors.

    Raises ``KeyError`` naming ``owner``, the missing keys and the keys ``state`` has.
    """
    if keys is None:
        return dict(state)
    missing = [k for k in keys if k not in state]
    if missing:
        raise KeyError(f"{owner} asks for state keys {missing}, but the env's state has {sorted(state)}")
    return {k: state[k] for k in keys}


def step_next_state(info: dict[str, Any], keys: Sequence[str], owner: str) -> dict[str, torch.Tensor]:
    """The true next state of a batched step: ``info["final_state"]`` restricted to ``keys`` (see
    :mod:`rlcore.env`; rows of envs that just finished hold the state before their reset).

    Raises ``RuntimeError`` naming ``owner`` if the env did not provide it (``record_final_state``
    not set, or an env that does not implement it) while ``keys`` is not empty.
    """
    if not keys:
        return {}
    final = info.get("final_state")
    if final is None:
        raise RuntimeError(
            f"{owner} needs next_state, but the env's step returned no info['final_state']; set "
            "env.record_final_state = True on an env that implements it (see rlcore.env)")
    return select_state(final, keys, owner)


class RolloutStorage:
    """Preallocated ``[T, N]`` buffers for one rollout of ``T`` batched steps of ``N`` envs.

    ``values`` carries one column per value stream: ``float32[T, N, S]`` (S = 1 extrinsic only,
    S = 2 extrinsic and intrinsic).

    Privileged state is stored only when written (:meth:`insert_state`, :meth:`insert_next_state`):
    ``states`` / ``next_states`` are then dicts of ``[T, N, ...]`` tensors with the dtypes of the
    first state written, allocated on that first write; until then both are ``None`` and
    :meth:`transitions` carries no state.
    """

    def __init__(
        self,
        n_steps: int,
        num_envs: int,
        observation_space: gym.Space,
        action_space: gym.Space,
        num_value_streams: int,
        device: torch.device,
    ) -> None:
        T, N = n_steps, num_envs
        self.n_steps, self.num_envs, self.device = T, N, device
        self.obs = _alloc_like_space(observation_space, (T, N), device)
        self.next_obs = _alloc_like_space(observation_space, (T, N), device)
        if isinstance(action_space, gym.spaces.Discrete):
            self.actions = torch.zeros((T, N), dtype=torch.int64, device=device)
        else:
            self.actions = torch.zeros((T, N, *action_space.shape), dtype=torch.float32, device=device)
        self.log_probs = torch.zeros((T, N), device=device)
        self.rewards = torch.zeros((T, N), device=device)
        self.values = torch.zeros((T, N, num_value_streams), device=device)
        self.terminated = torch.zeros((T, N), dtype=torch.bool, device=device)
        self.truncated = torch.zeros((T, N), dtype=torch.bool, device=device)
        self.states: Optional[dict[str, torch.Tensor]] = None
        self.next_states: Optional[dict[str, torch.Tensor]] = None

    def insert(
        self,
        t: int,
        obs: Obs,
        action: torch.Tensor,
        log_prob: torch.Tensor,
        value: torch.Tensor,
        reward: torch.Tensor,
        next_obs: Obs,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
    ) -> None:
        """Write step ``t`` (in-place copies, no allocation, no host sync)."""
        _copy_obs(self.obs, t, obs)
        _copy_obs(self.next_obs, t, next_obs)
        self.actions[t].copy_(action)
        self.log_probs[t].copy_(log_prob)
        self.values[t].copy_(value)
        self.rewards[t].copy_(reward)
        self.terminated[t].copy_(terminated)
        self.truncated[t].copy_(truncated)

    def insert_state(self, t: int, state: dict[str, torch.Tensor]) -> None:
        """Copy the privileged state before step ``t`` (``dict[str, Tensor[N, ...]]``) into ``states[t]``."""
        self.states = self._write_state(self.states, t, state, "state")

    def insert_next_state(self, t: int, next_state: dict[str, torch.Tensor]) -> None:
        """Copy the true privileged state after step ``t`` into ``next_states[t]``."""
        self.next_states = self._write_state(self.next_states, t, next_state, "next_state")

    def _write_state(self, store: Optional[dict[str, torch.Tensor]], t: int, state: dict[str, torch.Tensor],
                     what: str) -> dict[str, torch.Tensor]:
        if store is None:
            store = {}
            for k, v in state.items():
                if v.shape[:1] != (self.num_envs,):
                    raise ValueError(f"{what}[{k!r}] has shape {tuple(v.shape)}; expected leading dim {self.num_envs}")
                store[k] = torch.zeros((self.n_steps, *v.shape), dtype=v.dtype, device=self.device)
        elif store.keys() != state.keys():
            raise ValueError(f"{what} keys changed during the rollout: stored {sorted(store)}, got {sorted(state)}")
        for k, v in store.items():
            v[t].copy_(state[k])
        return store

    def transitions(self) -> TransitionBatch:
        """The rollout as a ``[T, N]`` :class:`TransitionBatch` (views, not copies), with the
        behaviour policy's ``log_prob``; ``state`` and ``next_state`` are set when privileged state
        was stored."""
        return TransitionBatch(
            obs=self.obs,
            action=self.actions,
            reward=self.rewards,
            next_obs=self.next_obs,
            terminated=self.terminated,
            truncated=self.truncated,
            state=self.states,
            next_state=self.next_states,
            log_prob=self.log_probs,
        )

    def dataset(self, metadata: Optional[dict[str, Any]] = None) -> "TrajectoryDataset":
        """The rollout as a :class:`~rlcore.data.TrajectoryDataset` (a copy, env-major episodes;
        episodes still running at the rollout's end are marked truncated there)."""
        from rlcore.data.dataset import TrajectoryDataset

        return TrajectoryDataset.from_steps(self.transitions(), metadata=metadata)


def _copy_obs(store: Obs, t: int, obs: Obs) -> None:
    if isinstance(store, dict):
        for k, v in store.items():
            v[t].copy_(obs[k])
    else:
        store[t].copy_(obs)
