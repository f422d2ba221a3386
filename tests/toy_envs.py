"""Tiny pure-torch batched envs for unit tests of the runtime (not part of the library)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from rlcore.env import BatchedEnv


class ChainEnv(BatchedEnv):
    """Walk right along a chain of ``length`` cells; reaching the end terminates with reward 1.

    obs: float32[N, length] one-hot position. actions: 0 = left, 1 = right. Truncated after
    ``max_steps`` steps.
    """

    env_id = "Chain-v0"

    def __init__(self, num_envs: int = 4, length: int = 5, max_steps: int = 20, device: str = "cpu") -> None:
        self.num_envs, self.length, self.max_steps = num_envs, length, max_steps
        self.device = torch.device(device)
        self.single_observation_space = gym.spaces.Box(0.0, 1.0, (length,), np.float32)
        self.single_action_space = gym.spaces.Discrete(2)
        self.pos = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)

    def _obs(self) -> torch.Tensor:
        return torch.nn.functional.one_hot(self.pos, self.length).float()

    def reset(self, seed=None, options=None):
        self.pos.zero_()
        self.t.zero_()
        return self._obs(), {}

    def step(self, actions):
        actions = self.check_actions(actions)
        self.pos = (self.pos + actions * 2 - 1).clamp(0, self.length - 1)
        self.t += 1
        terminated = self.pos == self.length - 1
        truncated = (self.t >= self.max_steps) & ~terminated
        reward = terminated.float()
        final_obs = self._obs()
        done = terminated | truncated
        self.pos = torch.where(done, torch.zeros_like(self.pos), self.pos)
        self.t = torch.where(done, torch.zeros_like(self.t), self.t)
        return self._obs(), reward, terminated, truncated, {"final_obs": final_obs, "success": terminated}

    def get_state(self):
        return {"pos": self.pos.clone(), "t": self.t.clone()}


class PointEnv(BatchedEnv):
    """1-D point mass; action in [-1, 1] moves it; reward = -|x - 1|. Truncated after 20 steps."""

    env_id = "Point-v0"

    def __init__(self, num_envs: int = 4, device: str = "cpu") -> None:
        self.num_envs, self.device = num_envs, torch.device(device)
        self.single_observation_space = gym.spaces.Box(-10.0, 10.0, (1,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.x = torch.zeros(num_envs, 1, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.long, device=self.device)

    def reset(self, seed=None, options=None):
        self.x.zero_()
        self.t.zero_()
        return self.x.clone(), {}

    def step(self, actions):
        actions = self.check_actions(actions)
        self.x = (self.x + 0.2 * actions).clamp(-10, 10)
        self.t += 1
        reward = -(self.x[:, 0] - 1.0).abs()
        truncated = self.t >= 20
        terminated = torch.zeros_like(truncated)
        final_obs = self.x.clone()
        self.x = torch.where(truncated[:, None], torch.zeros_like(self.x), self.x)
        self.t = torch.where(truncated, torch.zeros_like(self.t), self.t)
        return self.x.clone(), reward, terminated, truncated, {"final_obs": final_obs, "success": terminated}
