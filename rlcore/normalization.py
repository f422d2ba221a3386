"""Running statistics on the device (no host syncs), for observation and reward normalisation."""

from __future__ import annotations

import torch
from torch import nn


class RunningMeanStd(nn.Module):
    """Running mean and variance over a stream of batches (parallel/Chan et al. update).

    ``shape`` is the shape of one sample; ``update(x)`` takes ``x: float[..., *shape]`` and folds all
    leading dims in. State lives in buffers, so it moves with ``.to(device)`` and round-trips through
    ``state_dict``.
    """

    def __init__(self, shape: tuple[int, ...] = (), epsilon: float = 1e-4) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.register_buffer("mean", torch.zeros(self.shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(self.shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(float(epsilon), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.detach().double().reshape(-1, *self.shape)
        batch_mean = x.mean(0)
        batch_var = x.var(0, unbiased=False)
        n = torch.tensor(float(x.shape[0]), dtype=torch.float64, device=x.device)
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    @property
    def std(self) -> torch.Tensor:
        return self.var.sqrt()

    def normalize(self, x: torch.Tensor, clip: float | None = None) -> torch.Tensor:
        y = (x - self.mean.to(x.dtype)) / (self.std.to(x.dtype) + 1e-8)
        return y.clamp(-clip, clip) if clip is not None else y


class DiscountedReturnNormalizer(nn.Module):
    """Scales rewards by the running std of their discounted returns (Burda et al. 2019, RND).

    Rewards arrive as ``[T, N]`` rollouts; a per-env discounted return ``R_t = gamma * R_{t-1} + r_t``
    runs across rollouts (and, for non-episodic rewards, across episodes), its variance is tracked,
    and ``r / std(R)`` is returned. The scale is over time, not across the envs of one step.
    """

    def __init__(self, gamma: float = 0.99) -> None:
        super().__init__()
        self.gamma = float(gamma)
        self.stats = RunningMeanStd(())
        self.register_buffer("running", torch.zeros(0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "running"
        if key in state_dict:  # the per-env return buffer is sized on first use
            self.running = torch.zeros_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @torch.no_grad()
    def __call__(self, rewards: torch.Tensor, done: torch.Tensor | None = None, update: bool = True) -> torch.Tensor:
        T, N = rewards.shape
        if self.running.shape != (N,):
            self.running = torch.zeros(N, device=rewards.device, dtype=torch.float32)
        if update:
            returns = torch.empty_like(rewards)
            running = self.running
            for t in range(T):
                running = running * self.gamma + rewards[t]
                returns[t] = running
                if done is not None:
                    running = running * (~done[t]).float()
            self.running = running
            self.stats.update(returns)
        return rewards / (self.stats.std.float() + 1e-8)
