"""Rollout storage and generalised advantage estimation, all on the env's device."""

from __future__ import annotations

from typing import Optional

import gymnasium as gym
import torch

from rlcore.batch import TransitionBatch
from rlcore.tensors import Obs


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


class RolloutStorage:
    """Preallocated ``[T, N]`` buffers for one rollout of ``T`` batched steps of ``N`` envs.

    ``values`` carries one column per value stream: ``float32[T, N, S]`` (S = 1 extrinsic only,
    S = 2 extrinsic and intrinsic).
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

    def transitions(self) -> TransitionBatch:
        """The rollout as a ``[T, N]`` :class:`TransitionBatch` (views, not copies)."""
        return TransitionBatch(
            obs=self.obs,
            action=self.actions,
            reward=self.rewards,
            next_obs=self.next_obs,
            terminated=self.terminated,
            truncated=self.truncated,
        )


def _copy_obs(store: Obs, t: int, obs: Obs) -> None:
    if isinstance(store, dict):
        for k, v in store.items():
            v[t].copy_(obs[k])
    else:
        store[t].copy_(obs)
