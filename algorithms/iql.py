"""Implicit Q-Learning (Kostrikov, Nair and Levine, "Offline Reinforcement Learning with Implicit
Q-Learning", ICLR 2022), for continuous and discrete actions.

IQL never queries the critic on actions outside the dataset. Per gradient step, on a minibatch
``(s, a, r, s', d)``:

1. value: expectile regression of ``V(s)`` towards ``min(Q1', Q2')(s, a)`` (target critics),
   ``L_V = E[|tau - 1(u < 0)| u^2]``, ``u = Q'(s, a) - V(s)``, expectile ``tau = 0.7``;
2. actor: advantage-weighted regression, ``L_pi = -E[min(exp(beta (Q'(s, a) - V(s))), 100) log pi(a|s)]``,
   inverse temperature ``beta = 3``, weights clipped at 100;
3. critics: ``L_Q = E[(r + gamma (1 - terminated) V(s') - Q_i(s, a))^2]`` for both critics;
4. target critics: Polyak averaging with rate 0.005.

Hyperparameters are the paper's MuJoCo ones: Adam with lr 3e-4 for all networks, batch 256, discount
0.99, 256x256 ReLU networks, the actor's lr decayed by a cosine schedule over ``cosine_steps``
(1M, the paper's training length), a Gaussian actor with a tanh-bounded mean and a state-independent
log-std; evaluation uses the mean. ``normalize_returns=True`` applies the paper's MuJoCo reward
scaling ``r * 1000 / (max_return - min_return)`` over the dataset's episodes (off by default: it is
task-specific; the paper's AntMaze protocol uses ``r - 1`` instead, not provided here).

Discrete actions (MiniGrid; the paper is continuous only, so this is the library's extension): the
critics output ``Q(s, .)`` for every action and are read at the dataset's action, the actor is a
categorical policy trained with the same advantage weights.

Deviations: time-limit truncations bootstrap from ``V(s')`` (the paper's D4RL code treats the
dataset's ``timeouts`` the same way); the critics' loss is the sum over the two critics, as in the
official code.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Optional

import torch

from algorithms.offline_base import OfflineLearner
from algorithms.offline_nets import CategoricalActor, GaussianActor, QNetwork, ValueNetwork, soft_update
from rlcore.batch import TransitionBatch
from rlcore.data import TrajectoryDataset
from rlcore.tensors import Obs

CHECKPOINT_FORMAT = "rlreward.iql/1"


@dataclass
class IQLConfig:
    """Hyperparameters of IQL (the paper's MuJoCo defaults)."""

    batch_size: int = 256
    learning_rate: float = 3e-4      # critics, value and actor (Adam)
    gamma: float = 0.99
    tau: float = 0.005               # target critics' Polyak rate
    expectile: float = 0.7
    beta: float = 3.0                # inverse temperature of the advantage weights
    max_weight: float = 100.0        # clip of exp(beta * advantage)
    cosine_steps: int = 1_000_000    # the actor's lr follows a cosine decay to 0 over these steps
    normalize_returns: bool = False  # the paper's MuJoCo scaling r * 1000 / (max_return - min_return)
    log_every: int = 1000

    def validate(self) -> None:
        for name in ("batch_size", "log_every", "cosine_steps"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"algo.params.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("learning_rate", "beta", "max_weight"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"algo.params.{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 < float(self.expectile) < 1:
            raise ValueError(f"algo.params.expectile must lie in (0, 1), got {self.expectile!r}")
        if not 0 < float(self.tau) <= 1:
            raise ValueError(f"algo.params.tau must lie in (0, 1], got {self.tau!r}")
        if not 0 <= float(self.gamma) <= 1:
            raise ValueError(f"algo.params.gamma must lie in [0, 1], got {self.gamma!r}")


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """``E[|tau - 1(diff < 0)| diff^2]`` (asymmetric L2; ``diff = target - prediction``)."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.pow(2)).mean()


class IQL(OfflineLearner):
    """Implicit Q-Learning; see the module docstring. ``fit(dataset, n_steps, sampler=...)`` trains."""

    config_cls = IQLConfig
    checkpoint_format = CHECKPOINT_FORMAT
    name = "iql"

    def build(self) -> None:
        net = self.net_config
        self.q1 = QNetwork(self.observation_space, self.action_space, net)
        self.q2 = QNetwork(self.observation_space, self.action_space, net)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        for p in (*self.q1_target.parameters(), *self.q2_target.parameters()):
            p.requires_grad_(False)
        self.value = ValueNetwork(self.observation_space, net)
        self.actor = (CategoricalActor(self.observation_space, self.action_space, net) if self.discrete
                      else GaussianActor(self.observation_space, self.action_space, net))
        self.nets = {"q1": self.q1, "q2": self.q2, "q1_target": self.q1_target, "q2_target": self.q2_target,
                     "value": self.value, "actor": self.actor}
        lr = float(self.config.learning_rate)
        self.optimizers = {
            "critic": torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=lr),
            "value": torch.optim.Adam(self.value.parameters(), lr=lr),
            "actor": torch.optim.Adam(self.actor.parameters(), lr=lr),
        }
        self.reward_scale = 1.0

    def prepare(self, dataset: TrajectoryDataset) -> None:
        self.reward_scale = 1.0
        if self.config.normalize_returns:
            span = float(dataset.episode_return.max() - dataset.episode_return.min())
            self.reward_scale = 1000.0 / span if span > 0 else 1.0

    def _q(self, nets: tuple[QNetwork, QNetwork], obs: Obs, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.discrete:
            idx = action.long().unsqueeze(-1)
            return nets[0](obs).gather(-1, idx).squeeze(-1), nets[1](obs).gather(-1, idx).squeeze(-1)
        return nets[0](obs, action), nets[1](obs, action)

    def _actor_lr(self) -> float:
        t = min(self.num_timesteps, int(self.config.cosine_steps))
        return float(self.config.learning_rate) * 0.5 * (1.0 + math.cos(math.pi * t / int(self.config.cosine_steps)))

    def update(self, batch: TransitionBatch) -> dict[str, torch.Tensor]:
        cfg = self.config
        reward = batch.reward * self.reward_scale
        with torch.no_grad():
            q1_t, q2_t = self._q((self.q1_target, self.q2_target), batch.obs, batch.action)
            q_target = torch.minimum(q1_t, q2_t)
        # 1. value: expectile of the target critics' values
        v = self.value(batch.obs)
        value_loss = expectile_loss(q_target - v, float(cfg.expectile))
        self.optimizers["value"].zero_grad(set_to_none=True)
        value_loss.backward()
        self.optimizers["value"].step()
        # 2. actor: advantage-weighted regression on the dataset's actions
        advantage = (q_target - v.detach())
        weight = torch.exp(float(cfg.beta) * advantage).clamp(max=float(cfg.max_weight))
        log_prob = self.actor.log_prob(batch.obs, batch.action)
        actor_loss = -(weight * log_prob).mean()
        for group in self.optimizers["actor"].param_groups:
            group["lr"] = self._actor_lr()
        self.optimizers["actor"].zero_grad(set_to_none=True)
        actor_loss.backward()
        self.optimizers["actor"].step()
        # 3. critics: one-step targets through V(s')
        with torch.no_grad():
            target = reward + float(cfg.gamma) * (~batch.terminated).float() * self.value(batch.next_obs)
        q1, q2 = self._q((self.q1, self.q2), batch.obs, batch.action)
        critic_loss = (q1 - target).pow(2).mean() + (q2 - target).pow(2).mean()
        self.optimizers["critic"].zero_grad(set_to_none=True)
        critic_loss.backward()
        self.optimizers["critic"].step()
        # 4. target critics
        soft_update(self.q1_target, self.q1, float(cfg.tau))
        soft_update(self.q2_target, self.q2, float(cfg.tau))
        return {"loss/value": value_loss.detach(), "loss/actor": actor_loss.detach(), "loss/critic": critic_loss.detach(),
                "train/q": q1.detach().mean(), "train/v": v.detach().mean(), "train/advantage": advantage.mean(),
                "train/weight": weight.mean(), "train/actor_lr": torch.tensor(self._actor_lr())}

    def policy_action(self, obs: Obs, deterministic: bool, generator: Optional[torch.Generator]) -> torch.Tensor:
        return self.actor.act(obs, deterministic, generator)
