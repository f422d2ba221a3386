"""TD3+BC (Fujimoto and Gu, "A Minimalist Approach to Offline Reinforcement Learning", NeurIPS 2021),
for continuous actions.

TD3 (Fujimoto et al. 2018) with a behaviour-cloning term in the actor's loss and normalised
observations. Per gradient step, on a minibatch ``(s, a, r, s', d)`` with actions in ``[-1, 1]``:

1. critics: ``y = r + gamma (1 - terminated) min(Q1', Q2')(s', clip(pi'(s') + eps, -1, 1))``, target
   policy smoothing ``eps = clip(N(0, 0.2^2), -0.5, 0.5)``; ``L_Q = sum_i E[(Q_i(s, a) - y)^2]``;
2. every ``policy_delay`` (2) steps only: the actor, ``L_pi = -lambda E[Q1(s, pi(s))] + E[(pi(s) - a)^2]``
   with ``lambda = alpha / mean|Q1(s, pi(s))|`` over the minibatch, detached (no gradient flows
   through ``lambda``), ``alpha = 2.5``; then the target actor and critics move by Polyak averaging
   with rate 0.005.

Observations: every state is normalised by the dataset's per-feature mean and standard deviation,
``(s - mu) / (sigma + 1e-3)``, computed in :meth:`TD3BC.prepare` (once per ``fit``, from the dataset
being fitted) and kept in registered buffers (``nets["obs_norm"]``), so a checkpoint carries them and
:meth:`TD3BC.policy_action` applies them to the env's observations. The normalisation applies only to
flat (1-D) float ``Box`` observations; for dict or image observations (MiniGrid's symbolic grid) and
for integer Boxes it is not applied (the statistics of categorical cells are no features to
standardise), and ``normalize_observations=False`` turns it off everywhere.

Hyperparameters are the paper's: Adam with lr 3e-4 for actor and critics, batch 256, discount 0.99,
256x256 ReLU networks (``algo.policy``), a ``tanh`` deterministic actor, twin critics.

Deviations and choices:

* continuous actions only (a ``Discrete`` action space is refused); the paper is continuous only;
* time-limit truncations bootstrap (the target is masked by ``terminated`` only), as the official
  code does for D4RL's ``timeouts``;
* the policy delay counts gradient steps from 1, as the official code (actor updates on steps 2, 4, ...);
* the critic loss is the sum of both critics' mean squared errors, as the official code;
* the standard deviation is the population one (numpy's default, as the official code); the
  statistics are recomputed at every ``fit`` from the dataset passed to it;
* the policy is deterministic, so ``act(deterministic=False)`` returns the same action (the paper
  evaluates without exploration noise; there is no online data collection to explore for);
* the logged ``loss/actor`` and ``train/lambda`` are means over the steps that updated the actor.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from algorithms.offline_base import OfflineLearner
from algorithms.offline_nets import DeterministicActor, QNetwork, frozen, soft_update
from rlcore.batch import TransitionBatch
from rlcore.data import TrajectoryDataset
from rlcore.tensors import Obs

CHECKPOINT_FORMAT = "rlreward.td3bc/1"


@dataclass
class TD3BCConfig:
    """Hyperparameters of TD3+BC (the paper's defaults)."""

    batch_size: int = 256
    learning_rate: float = 3e-4        # actor and critics (Adam)
    gamma: float = 0.99
    tau: float = 0.005                 # target networks' Polyak rate
    alpha: float = 2.5                 # lambda = alpha / mean|Q(s, pi(s))|
    policy_noise: float = 0.2          # target policy smoothing std (in the [-1, 1] action space)
    noise_clip: float = 0.5            # clip of the smoothing noise
    policy_delay: int = 2              # actor and target updates every policy_delay gradient steps
    normalize_observations: bool = True  # dataset mean/std normalisation of flat float Box observations
    obs_eps: float = 1e-3              # added to the observations' std
    log_every: int = 1000

    def validate(self) -> None:
        for name in ("batch_size", "log_every", "policy_delay"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"algo.params.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("learning_rate", "alpha", "obs_eps"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"algo.params.{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("policy_noise", "noise_clip"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"algo.params.{name} must be >= 0, got {getattr(self, name)!r}")
        if not 0 < float(self.tau) <= 1:
            raise ValueError(f"algo.params.tau must lie in (0, 1], got {self.tau!r}")
        if not 0 <= float(self.gamma) <= 1:
            raise ValueError(f"algo.params.gamma must lie in [0, 1], got {self.gamma!r}")


def normalizable(space: gym.Space) -> bool:
    """Whether TD3+BC normalises observations of ``space``: flat (1-D) float ``Box`` only."""
    return (isinstance(space, gym.spaces.Box) and len(space.shape) == 1
            and np.issubdtype(space.dtype, np.floating))


class ObsNormalizer(nn.Module):
    """``(obs - mean) / std`` with buffers ``mean`` and ``std`` (``float32[D]``, identity until
    :meth:`fit`); a no-op with empty buffers when ``enabled`` is False."""

    def __init__(self, space: gym.Space, enabled: bool) -> None:
        super().__init__()
        self.enabled = bool(enabled)
        dim = int(space.shape[0]) if self.enabled else 0
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, obs: torch.Tensor, eps: float) -> None:
        if not self.enabled:
            return
        x = obs.to(self.mean.device, torch.float64)
        self.mean.copy_(x.mean(0).float())
        self.std.copy_((x.std(0, unbiased=False) + eps).float())

    def forward(self, obs: Obs) -> Obs:
        if not self.enabled:
            return obs
        return (obs - self.mean) / self.std


class TD3BC(OfflineLearner):
    """TD3+BC; see the module docstring. ``fit(dataset, n_steps, sampler=...)`` trains."""

    config_cls = TD3BCConfig
    checkpoint_format = CHECKPOINT_FORMAT
    name = "td3bc"

    def build(self) -> None:
        if self.discrete:
            raise ValueError(f"algo=td3bc needs a continuous (Box) action space, got {self.action_space}; "
                             f"use algo=cql or algo=iql for discrete actions")
        net = self.net_config
        self.obs_norm = ObsNormalizer(self.observation_space,
                                      bool(self.config.normalize_observations) and normalizable(self.observation_space))
        self.actor = DeterministicActor(self.observation_space, self.action_space, net)
        self.q1 = QNetwork(self.observation_space, self.action_space, net)
        self.q2 = QNetwork(self.observation_space, self.action_space, net)
        self.actor_target = copy.deepcopy(self.actor)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        for target in (self.actor_target, self.q1_target, self.q2_target):
            target.requires_grad_(False)
        self.nets = {"obs_norm": self.obs_norm, "actor": self.actor, "q1": self.q1, "q2": self.q2,
                     "actor_target": self.actor_target, "q1_target": self.q1_target, "q2_target": self.q2_target}
        lr = float(self.config.learning_rate)
        self.optimizers = {
            "critic": torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=lr),
            "actor": torch.optim.Adam(self.actor.parameters(), lr=lr),
        }

    def prepare(self, dataset: TrajectoryDataset) -> None:
        if self.obs_norm.enabled:
            self.obs_norm.fit(dataset.obs, float(self.config.obs_eps))

    def actor_loss(self, obs: Obs, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(L_pi, lambda, Q1(s, pi(s)))`` on normalised observations ``obs`` and dataset actions ``action``."""
        pi = self.actor(obs)
        with frozen(self.q1):  # the actor's loss moves the actor only
            q = self.q1(obs, pi)
        lam = float(self.config.alpha) / q.abs().mean().detach()
        loss = -lam * q.mean() + (pi - action).pow(2).mean()
        return loss, lam, q

    def update(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        cfg = self.config
        obs, next_obs = self.obs_norm(batch.obs), self.obs_norm(batch.next_obs)
        # 1. critics, with target policy smoothing
        with torch.no_grad():
            next_pi = self.actor_target(next_obs)
            noise = torch.randn(next_pi.shape, device=next_pi.device, generator=self.generator)
            noise = (noise * float(cfg.policy_noise)).clamp(-float(cfg.noise_clip), float(cfg.noise_clip))
            next_action = (next_pi + noise).clamp(-1.0, 1.0)
            next_q = torch.minimum(self.q1_target(next_obs, next_action), self.q2_target(next_obs, next_action))
            target = batch.reward + float(cfg.gamma) * (~batch.terminated).float() * next_q
        q1, q2 = self.q1(obs, batch.action), self.q2(obs, batch.action)
        critic_loss = (q1 - target).pow(2).mean() + (q2 - target).pow(2).mean()
        self.optimizers["critic"].zero_grad(set_to_none=True)
        critic_loss.backward()
        self.optimizers["critic"].step()
        metrics = {"loss/critic": critic_loss.detach(), "train/q": q1.detach().mean(), "train/target": target.mean()}
        # 2. delayed actor and target updates (gradient steps are counted from 1)
        if (self.num_timesteps + 1) % int(cfg.policy_delay) == 0:
            actor_loss, lam, q_pi = self.actor_loss(obs, batch.action)
            self.optimizers["actor"].zero_grad(set_to_none=True)
            actor_loss.backward()
            self.optimizers["actor"].step()
            soft_update(self.actor_target, self.actor, float(cfg.tau))
            soft_update(self.q1_target, self.q1, float(cfg.tau))
            soft_update(self.q2_target, self.q2, float(cfg.tau))
            metrics.update({"loss/actor": actor_loss.detach(), "train/lambda": lam, "train/q_pi": q_pi.detach().mean()})
        return metrics

    def policy_action(self, obs: Obs, deterministic: bool, generator: Optional[torch.Generator]) -> torch.Tensor:
        return self.actor(self.obs_norm(obs))
