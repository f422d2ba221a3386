"""Disagreement (Pathak, Gandhi & Gupta 2019, "Self-Supervised Exploration via Disagreement").

An ensemble of ``K`` forward models ``f_k(phi(s), a) -> phi(s')`` is trained on the agent's
transitions; the bonus is their disagreement on the transition taken,

    b = mean_j Var_k [ f_k(phi(s), a)_j ]      (variance across members, averaged over feature dims)

which shrinks where the models have seen enough data to agree and, unlike a prediction error, does
not stay high on stochastic transitions (the members all learn the mean).

Implementation: ``phi`` is a fixed random feature network (the shared encoder plus a random MLP,
never trained) — the random-feature setting the paper uses; the ``K`` members are one batched module
(weights ``[K, in, out]``, one ``baddbmm`` per layer, no loop over members). Members differ by
initialisation and each sees the rollout in its own random minibatch order. Discrete actions enter
one-hot, 1-D Box actions as vectors.

Deviations, stated: the paper also backpropagates the disagreement into the policy (differentiable
exploration); here the bonus is a reward for any learner, as in the paper's non-differentiable
variant. Small MLP members on the shared encoders; no observation normalisation (features are fixed).
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.icm import action_dim, encode_actions
from rewards.intrinsic.rnd import OptimizerState, bonus_metrics, check_unit_interval, feature_net
from rlcore.batch import TransitionBatch
from rlcore.tensors import flatten_leading, obs_flatten_leading


class EnsembleLinear(nn.Module):
    """``K`` independent linear layers applied at once: ``[K, B, in] -> [K, B, out]``."""

    def __init__(self, members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class Disagreement(OptimizerState, IntrinsicBonus):
    """Ensemble-disagreement bonus (global, non-episodic).

    Args:
        observation_space, action_space: single-env spaces (Discrete or 1-D Box actions).
        ensemble_size: number of forward models ``K`` (paper: 5).
        feature_dim: size of the fixed random features ``phi``.
        hidden_dim: width of the members' hidden layers.
        encoder: ``"auto"`` (the MiniGrid CNN without pooling for MiniGrid dicts, flatten otherwise),
            ``"mlp"``, ``"grid_nopool"`` or the policies' pooled ``"grid"`` / ``"minigrid"``.
        lr, epochs, minibatch_size, update_proportion: members' training on each rollout.
    """

    name = "disagreement"
    episodic = False

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, ensemble_size: int = 5,
                 feature_dim: int = 64, hidden_dim: int = 128, encoder: str = "auto", lr: float = 1e-3,
                 epochs: int = 1, minibatch_size: int = 1024, update_proportion: float = 1.0) -> None:
        super().__init__(observation_space, action_space)
        owner = f"bonus '{self.name}'"
        if ensemble_size < 2:
            raise ValueError(f"{owner}: ensemble_size must be >= 2 (a variance needs two members), got {ensemble_size}")
        self.act_dim, self.discrete = action_dim(action_space, owner)
        self.phi = feature_net(observation_space, owner, feature_dim, hidden_dim, 1, encoder).requires_grad_(False)
        k = int(ensemble_size)
        self.members = nn.Sequential(
            EnsembleLinear(k, feature_dim + self.act_dim, hidden_dim), nn.ReLU(),
            EnsembleLinear(k, hidden_dim, hidden_dim), nn.ReLU(),
            EnsembleLinear(k, hidden_dim, feature_dim),
        )
        self.ensemble_size = k
        self.epochs, self.minibatch_size = int(epochs), int(minibatch_size)
        self.update_proportion = check_unit_interval(update_proportion, "update_proportion", owner)
        self.optimizer = torch.optim.Adam(self.members.parameters(), lr=lr)
        self._last_bonus = None

    @torch.no_grad()
    def _inputs(self, batch: TransitionBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """``(phi(s) ++ a  float32[B, F + A], phi(s') float32[B, F])`` of a batch, flattened."""
        lead = batch.reward.dim()
        phi = self.phi(obs_flatten_leading(batch.obs, lead))
        phi_next = self.phi(obs_flatten_leading(batch.next_obs, lead))
        a = encode_actions(flatten_leading(batch.action, lead), self.act_dim, self.discrete)
        return torch.cat([phi, a], dim=-1), phi_next

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        x, _ = self._inputs(batch)
        preds = self.members(x.unsqueeze(0).expand(self.ensemble_size, -1, -1))   # [K, B, F]
        bonus = preds.var(dim=0, unbiased=False).mean(-1).reshape(batch.batch_shape)
        self._last_bonus = bonus
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        x, y = self._inputs(batch)
        n, k, device = x.shape[0], self.ensemble_size, x.device
        keep = max(1, int(round(n * self.update_proportion)))
        total, steps = torch.zeros((), device=device), 0
        for _ in range(self.epochs):
            # each member draws its own random subset and order: idx [K, keep]
            order = torch.argsort(torch.rand(k, n, device=device), dim=1)[:, :keep]
            for start in range(0, keep, self.minibatch_size):
                idx = order[:, start:start + self.minibatch_size]                   # [K, mb]
                pred = self.members(x[idx])                                           # [K, mb, F]
                loss = (pred - y[idx]).pow(2).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += loss.detach()
                steps += 1
        return {"loss": float(total / max(steps, 1)), **bonus_metrics(self._last_bonus)}
