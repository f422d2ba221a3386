"""Actor-critic networks for the native PPO: an MLP policy and a MiniGrid embedding-CNN policy.

Observation encoders:

* ``"mlp"``: flattens a Box observation (or, for MiniGrid dict observations, the ``image`` entry)
  to float and feeds separate actor and critic MLPs, the same layout as stable-baselines3's
  ``MlpPolicy`` (``net_arch=[64, 64]``, tanh), so network sizes can be matched in benchmarks.
* ``"minigrid"``: for MiniGrid's symbolic ``image: uint8[N, 7, 7, 3]`` (object, colour, state per
  cell): each channel is embedded, the 7x7 map goes through a small CNN (three 2x2 convolutions,
  as in the common MiniGrid PPO baselines), the agent's ``direction`` is appended as a one-hot, and
  actor and critic heads share that encoder.

The critic has one output per value stream (extrinsic, and intrinsic when an exploration bonus is
used), each trained against its own returns.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any, Mapping, Sequence

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from rlcore.nets import GRID_KINDS, FlattenObs, GridEncoder, is_grid_space
from rlcore.tensors import Obs

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def _mlp(sizes: Sequence[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), activation()]
    return nn.Sequential(*layers)


def _init_layer(layer: nn.Module, gain: float) -> None:
    if isinstance(layer, (nn.Linear, nn.Conv2d)):
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)


class ActorCritic(nn.Module):
    """Policy and value networks with a Categorical (Discrete) or diagonal Gaussian (Box) head.

    Args:
        observation_space, action_space: single-env spaces.
        encoder: ``"mlp"``, ``"minigrid"`` or ``"auto"`` (minigrid for MiniGrid dict obs, else mlp).
        hidden_sizes: hidden layers of the actor and critic MLPs.
        activation: ``"tanh"`` or ``"relu"``.
        num_value_streams: critic outputs (1 extrinsic; 2 extrinsic + intrinsic).
        log_std_init: initial log standard deviation of the Gaussian head.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        encoder: str = "auto",
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        num_value_streams: int = 1,
        log_std_init: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"policy activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if encoder == "auto":
            encoder = "minigrid" if is_grid_space(observation_space) else "mlp"
        if encoder not in ("mlp", *GRID_KINDS):
            raise ValueError(f"policy encoder must be 'auto', 'mlp' or 'minigrid' (or 'grid'), got {encoder!r}")
        if isinstance(action_space, gym.spaces.Discrete):
            self.discrete, act_dim = True, int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.discrete, act_dim = False, int(action_space.shape[0])
        else:
            raise ValueError(f"PPO policy supports Discrete and 1-D Box action spaces, got {action_space}")
        act = _ACTIVATIONS[activation]
        self.encoder_name = encoder
        self.num_value_streams = num_value_streams
        sizes = list(hidden_sizes)
        if not sizes or any(int(h) < 1 for h in sizes):
            raise ValueError(f"algo.policy.hidden_sizes must be a non-empty list of positive sizes, got {sizes!r}")
        if encoder == "mlp":
            # Separate encoders (flattening has no parameters) and MLPs, like SB3's MlpPolicy.
            self.encoder = FlattenObs(observation_space)
            in_dim = self.encoder.out_dim
        else:
            self.encoder = GridEncoder(observation_space)
            in_dim = self.encoder.out_dim
        self.actor_body = _mlp([in_dim, *sizes], act)
        self.critic_body = _mlp([in_dim, *sizes], act)
        last = sizes[-1] if sizes else in_dim
        self.actor_out = nn.Linear(last, act_dim)
        self.critic_out = nn.Linear(last, num_value_streams)
        self.log_std = None if self.discrete else nn.Parameter(torch.full((act_dim,), float(log_std_init)))
        if not self.discrete:
            self.register_buffer("action_low", torch.as_tensor(action_space.low, dtype=torch.float32))
            self.register_buffer("action_high", torch.as_tensor(action_space.high, dtype=torch.float32))
        for module in [*self.actor_body, *self.critic_body]:
            _init_layer(module, math.sqrt(2))
        _init_layer(self.actor_out, 0.01)
        _init_layer(self.critic_out, 1.0)

    # ---------------------------------------------------------------------------------- forward
    def _heads(self, obs: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(obs)
        return self.actor_out(self.actor_body(features)), self.critic_out(self.critic_body(features))

    def _distribution(self, head: torch.Tensor):
        if self.discrete:
            return Categorical(logits=head, validate_args=False)
        return Normal(head, self.log_std.exp().expand_as(head), validate_args=False)

    def _log_prob(self, dist, actions: torch.Tensor) -> torch.Tensor:
        log_prob = dist.log_prob(actions)
        return log_prob if self.discrete else log_prob.sum(-1)

    def act(
        self, obs: Obs, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample actions. Returns ``actions, log_probs float32[N], values float32[N, S]``.

        Sampling draws from ``generator`` (on the obs device) so seeded runs are reproducible
        without touching torch's global RNG. Gaussian actions are returned unclipped (the learner
        clips them to the action bounds before stepping the env) so their log-probabilities stay exact.
        """
        head, values = self._heads(obs)
        dist = self._distribution(head)
        if deterministic:
            actions = head.argmax(-1) if self.discrete else head
        elif self.discrete:
            # Gumbel-max: with E ~ Exp(1), -log(E) is Gumbel noise and argmax(logits - log E) is a
            # sample of Categorical(logits).
            exp_noise = torch.empty_like(head).exponential_(generator=generator)
            actions = (head - exp_noise.log()).argmax(-1)
        else:
            noise = torch.randn(head.shape, generator=generator, device=head.device)
            actions = head + noise * self.log_std.exp()
        return actions, self._log_prob(dist, actions), values

    def evaluate(self, obs: Obs, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-probabilities float32[N], entropies float32[N] and values float32[N, S] of ``actions``."""
        head, values = self._heads(obs)
        dist = self._distribution(head)
        entropy = dist.entropy()
        if not self.discrete:
            entropy = entropy.sum(-1)
        return self._log_prob(dist, actions), entropy, values

    def action_distribution(self, obs: Obs):
        """The policy's action distribution at ``obs`` (actor only; the critic is not evaluated).
        ``log_prob`` of it sums over action dims through :meth:`log_prob_of`."""
        return self._distribution(self.actor_out(self.actor_body(self.encoder(obs))))

    def log_prob_of(self, dist, actions: torch.Tensor) -> torch.Tensor:
        """float32[N] log-probabilities of ``actions`` under ``dist`` (summed over Box dims)."""
        return self._log_prob(dist, actions)

    def value(self, obs: Obs) -> torch.Tensor:
        """float32[N, S] values of every stream."""
        return self.critic_out(self.critic_body(self.encoder(obs)))

    def env_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions as the env takes them: Gaussian samples clipped to the Box bounds."""
        if self.discrete:
            return actions
        return torch.maximum(torch.minimum(actions, self.action_high), self.action_low)


def learner_args_from_config(algo_cfg: Mapping[str, Any], config_cls: type, learner: str) -> tuple[Any, dict[str, Any]]:
    """``(config_cls(**algo.params), policy kwargs of ActorCritic)`` from an ``algo`` config group.

    Unknown keys raise ``ValueError`` naming ``algo.params.<key>`` (not a ``learner`` hyperparameter)
    or ``algo.policy.<key>`` (not a policy option), with the known keys.
    """
    params = dict(algo_cfg.get("params") or {})
    known = {f.name for f in dataclasses.fields(config_cls)}
    for key in params:
        if key not in known:
            raise ValueError(f"algo.params.{key} is not a {learner} hyperparameter; known: {', '.join(sorted(known))}")
    policy_kwargs = dict(algo_cfg.get("policy") or {})
    allowed = set(inspect.signature(ActorCritic.__init__).parameters) - {"self", "observation_space", "action_space",
                                                                      "num_value_streams"}
    for key in policy_kwargs:
        if key not in allowed:
            raise ValueError(f"algo.policy.{key} is not a policy option; known: {', '.join(sorted(allowed))}")
    if "hidden_sizes" in policy_kwargs:
        policy_kwargs["hidden_sizes"] = list(policy_kwargs["hidden_sizes"])
    return config_cls(**params), policy_kwargs
