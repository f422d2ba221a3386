"""Networks of the offline learners (IQL, TD3+BC, CQL): critics, value functions and actors.

Every network starts with the library's observation encoder (``rlcore.nets.make_encoder``: the
flattened observation for vectors, the symbolic-grid encoder for MiniGrid) followed by an MLP
(``hidden_sizes``, default 256x256 ReLU as in the IQL, TD3+BC and CQL papers). Continuous actions
live in ``[-1, 1]`` inside the learners (:class:`ActionScaler` maps them to and from the env's Box
bounds); discrete critics output one value per action.

Shapes: ``obs: [B, ...]`` (or a dict), continuous ``action: float32[B, A]`` in ``[-1, 1]``, discrete
``action: int64[B]``; values ``float32[B]``; discrete Q-values ``float32[B, n]``.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import gymnasium as gym
import torch
from torch import nn

from rlcore.nets import make_encoder
from rlcore.tensors import Obs

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


@dataclass
class OfflineNetConfig:
    """``algo.policy`` of the offline learners: the shape of every network."""

    encoder: str = "auto"          # rlcore.nets.make_encoder kind: auto | mlp | grid | grid_nopool | grid_view
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    activation: str = "relu"       # relu | tanh

    def validate(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"algo.policy.activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if not self.hidden_sizes or any(int(h) <= 0 for h in self.hidden_sizes):
            raise ValueError(f"algo.policy.hidden_sizes must be positive layer widths, got {list(self.hidden_sizes)}")


def mlp(sizes: Sequence[int], activation: str, out_gain: Optional[float] = None) -> nn.Sequential:
    """``Linear`` layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(int(a), int(b)))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    if out_gain is not None:
        last = layers[-1]
        assert isinstance(last, nn.Linear)
        nn.init.uniform_(last.weight, -out_gain, out_gain)
        nn.init.uniform_(last.bias, -out_gain, out_gain)
    return nn.Sequential(*layers)


class ActionScaler(nn.Module):
    """Maps Box actions between the env's bounds and ``[-1, 1]`` (the learners' action space)."""

    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__()
        low = torch.as_tensor(space.low, dtype=torch.float32)
        high = torch.as_tensor(space.high, dtype=torch.float32)
        if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError(f"offline learners need a bounded Box action space, got {space}")
        self.register_buffer("low", low)
        self.register_buffer("high", high)

    def to_unit(self, action: torch.Tensor) -> torch.Tensor:
        return (2.0 * (action - self.low) / (self.high - self.low) - 1.0).clamp(-1.0, 1.0)

    def to_env(self, unit: torch.Tensor) -> torch.Tensor:
        return self.low + (unit.clamp(-1.0, 1.0) + 1.0) * 0.5 * (self.high - self.low)


class _Body(nn.Module):
    def __init__(self, space: gym.Space, net: OfflineNetConfig, extra_in: int, out: int, owner: str) -> None:
        super().__init__()
        self.encoder = make_encoder(space, net.encoder, owner=owner)
        self.head = mlp([self.encoder.out_dim + extra_in, *net.hidden_sizes, out], net.activation)

    def forward(self, obs: Obs, extra: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.encoder(obs)
        if extra is not None:
            x = torch.cat([x, extra], dim=-1)
        return self.head(x)


class QNetwork(nn.Module):
    """``Q(s, a)``: ``float32[B]`` for a continuous action, ``float32[B, n]`` (all actions) for discrete."""

    def __init__(self, obs_space: gym.Space, action_space: gym.Space, net: OfflineNetConfig) -> None:
        super().__init__()
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        if self.discrete:
            self.body = _Body(obs_space, net, 0, int(action_space.n), "Q-network")
        else:
            self.body = _Body(obs_space, net, int(math.prod(action_space.shape)), 1, "Q-network")

    def forward(self, obs: Obs, action: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.discrete:
            return self.body(obs)
        return self.body(obs, action).squeeze(-1)


class ValueNetwork(nn.Module):
    """``V(s): float32[B]``."""

    def __init__(self, obs_space: gym.Space, net: OfflineNetConfig) -> None:
        super().__init__()
        self.body = _Body(obs_space, net, 0, 1, "value network")

    def forward(self, obs: Obs) -> torch.Tensor:
        return self.body(obs).squeeze(-1)


class GaussianActor(nn.Module):
    """A diagonal Gaussian over ``[-1, 1]`` actions with a tanh-bounded mean and a state-independent
    log-std clipped to ``[log_std_min, log_std_max]`` (IQL's actor). ``mode`` is the mean."""

    def __init__(self, obs_space: gym.Space, action_space: gym.spaces.Box, net: OfflineNetConfig,
                 log_std_min: float = -5.0, log_std_max: float = 2.0) -> None:
        super().__init__()
        dim = int(math.prod(action_space.shape))
        self.body = _Body(obs_space, net, 0, dim, "actor")
        self.log_std = nn.Parameter(torch.zeros(dim))
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)

    def distribution(self, obs: Obs) -> torch.distributions.Normal:
        mean = torch.tanh(self.body(obs))
        std = self.log_std.clamp(self.log_std_min, self.log_std_max).exp().expand_as(mean)
        return torch.distributions.Normal(mean, std)

    def log_prob(self, obs: Obs, action: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs).log_prob(action).sum(-1)

    def act(self, obs: Obs, deterministic: bool, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        dist = self.distribution(obs)
        if deterministic:
            return dist.mean
        noise = torch.randn(dist.mean.shape, device=dist.mean.device, generator=generator)
        return (dist.mean + dist.stddev * noise).clamp(-1.0, 1.0)


class TanhGaussianActor(nn.Module):
    """SAC's actor (Haarnoja et al. 2018): ``a = tanh(u)``, ``u ~ N(mu(s), sigma(s))``, with the
    change-of-variables log-probability; CQL's actor. ``mode`` is ``tanh(mu)``."""

    def __init__(self, obs_space: gym.Space, action_space: gym.spaces.Box, net: OfflineNetConfig,
                 log_std_min: float = -20.0, log_std_max: float = 2.0) -> None:
        super().__init__()
        self.dim = int(math.prod(action_space.shape))
        self.body = _Body(obs_space, net, 0, 2 * self.dim, "actor")
        self.log_std_min, self.log_std_max = float(log_std_min), float(log_std_max)

    def _params(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.body(obs).chunk(2, dim=-1)
        return mu, log_std.clamp(self.log_std_min, self.log_std_max)

    def sample(self, obs: Obs, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample ``float32[B, A]`` and its log-probability ``float32[B]``."""
        mu, log_std = self._params(obs)
        std = log_std.exp()
        u = mu + std * torch.randn(mu.shape, device=mu.device, generator=generator)
        a = torch.tanh(u)
        normal = -0.5 * ((u - mu) / std).pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        # log(1 - tanh(u)^2) computed stably as 2 (log 2 - u - softplus(-2u))
        correction = 2.0 * (math.log(2.0) - u - nn.functional.softplus(-2.0 * u))
        return a, (normal - correction).sum(-1)

    def act(self, obs: Obs, deterministic: bool, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        if deterministic:
            return torch.tanh(self._params(obs)[0])
        return self.sample(obs, generator)[0]


class DeterministicActor(nn.Module):
    """``pi(s) = tanh(f(s))`` in ``[-1, 1]`` (TD3's actor)."""

    def __init__(self, obs_space: gym.Space, action_space: gym.spaces.Box, net: OfflineNetConfig) -> None:
        super().__init__()
        self.body = _Body(obs_space, net, 0, int(math.prod(action_space.shape)), "actor")

    def forward(self, obs: Obs) -> torch.Tensor:
        return torch.tanh(self.body(obs))


class CategoricalActor(nn.Module):
    """``pi(a|s)`` over ``n`` discrete actions (logits ``float32[B, n]``)."""

    def __init__(self, obs_space: gym.Space, action_space: gym.spaces.Discrete, net: OfflineNetConfig) -> None:
        super().__init__()
        self.body = _Body(obs_space, net, 0, int(action_space.n), "actor")

    def distribution(self, obs: Obs) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.body(obs))

    def log_prob(self, obs: Obs, action: torch.Tensor) -> torch.Tensor:
        return self.distribution(obs).log_prob(action)

    def act(self, obs: Obs, deterministic: bool, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        logits = self.body(obs)
        if deterministic:
            return logits.argmax(-1)
        return torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Parameters of ``modules`` need no gradient inside the block (a critic read by an actor's loss),
    restored afterwards; the graph built inside holds no gradient path into them."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging ``target <- (1 - tau) target + tau source`` (in place, no grad)."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.lerp_(s, tau)
