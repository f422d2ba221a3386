"""ICM: Intrinsic Curiosity Module (Pathak et al. 2017, "Curiosity-driven Exploration by
Self-supervised Prediction").

Features ``phi(s)`` are learned by an inverse model that predicts the action from
``(phi(s), phi(s'))``; a forward model predicts ``phi(s')`` from ``(phi(s), a)``. The bonus is the
forward model's error in feature space,

    b = eta / 2 * ||f(phi(s), a) - phi(s')||^2        (summed over the feature dims)

and the modules are trained jointly on ``(1 - beta) * L_inverse + beta * L_forward`` with
``L_forward = 1/2 ||f(phi(s), a) - phi(s')||^2`` (paper: ``beta = 0.2``, lr 1e-3). As in the paper's
objective, the forward loss also trains ``phi``.

Actions: Discrete actions enter the forward model one-hot and the inverse model is a softmax
classifier (cross-entropy), as in the paper; 1-D Box actions enter as vectors and the inverse model
regresses them (mean squared error) — an extension, the paper had discrete actions only.

Features (``features``, see ``rewards.intrinsic.features``): by default (``"auto"``) ICM on MiniGrid
computes ``phi`` from **privileged state** (the whole grid, the agent's cell and the carried object,
from ``env.get_state()``; learners record it for the bonus) while the policy stays egocentric; other
observation spaces use the observation. The egocentric view, even through the CNN without pooling
(``features="obs"``: ``rlcore.nets.GridEncoder(pool=False)``, 512 features), gave a new heading in a
visited cell a larger forward error than a newly reached cell on 10 of 12 seed pairs of
``tests/test_intrinsic_position.py`` (so did the pooled CNN); the state features rank the new cell
first on all 12. The heading is
not part of the state features, so turning in place is predictable and earns little.

Deviations, stated: small MLP heads on the bonuses' encoders instead of the paper's Atari/VizDoom
CNN; on MiniGrid the default features are privileged state, which the paper's agent never had;
``eta`` defaults to 1 because the combiner normalises the bonus (the paper's code scaled by 0.01 on
unnormalised rewards); no observation normalisation.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.rnd import OptimizerState, bonus_metrics, check_unit_interval, feature_net, minibatch_indices
from rlcore.batch import TransitionBatch
from rlcore.tensors import Obs, flatten_leading, obs_flatten_leading, obs_index


def action_dim(action_space: gym.Space, owner: str) -> tuple[int, bool]:
    """``(size of the action encoding, is_discrete)``; raises ValueError naming ``owner`` otherwise."""
    if isinstance(action_space, gym.spaces.Discrete):
        return int(action_space.n), True
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return int(action_space.shape[0]), False
    raise ValueError(f"{owner} needs a Discrete or 1-D Box action space, got {action_space}")


def encode_actions(action: torch.Tensor, dim: int, discrete: bool) -> torch.Tensor:
    """``float32[B, dim]``: one-hot for Discrete actions, the action vector for Box actions."""
    if discrete:
        return nn.functional.one_hot(action.reshape(-1).long(), dim).float()
    return action.reshape(-1, dim).float()


class ICM(OptimizerState, IntrinsicBonus):
    """Intrinsic Curiosity Module bonus (global, non-episodic).

    Args:
        observation_space, action_space: single-env spaces (Discrete or 1-D Box actions).
        feature_dim: size of ``phi``.
        hidden_dim: width of the inverse and forward models.
        encoder: for ``features="obs"``: ``"auto"`` (``"grid_nopool"`` for MiniGrid dicts, flatten
            otherwise), ``"mlp"``, ``"grid_nopool"`` or the policies' pooled ``"grid"`` / ``"minigrid"``.
        eta: bonus scale.
        beta: weight of the forward loss against the inverse loss (paper: 0.2).
        lr, epochs, minibatch_size, update_proportion: training on each rollout (paper lr: 1e-3).
        features: ``"auto"`` (default: privileged ``"state"`` for MiniGrid observations, ``"obs"``
            otherwise), ``"obs"`` or ``"state"``.
    """

    name = "icm"
    episodic = False

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, feature_dim: int = 64,
                 hidden_dim: int = 128, encoder: str = "auto", eta: float = 1.0, beta: float = 0.2, lr: float = 1e-3,
                 epochs: int = 1, minibatch_size: int = 1024, update_proportion: float = 1.0,
                 features: str = "auto") -> None:
        super().__init__(observation_space, action_space)
        owner = f"bonus '{self.name}'"
        self.act_dim, self.discrete = action_dim(action_space, owner)
        self.phi = feature_net(observation_space, owner, feature_dim, hidden_dim, 1, encoder, self.set_features(features))
        self.inverse = nn.Sequential(nn.Linear(2 * feature_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, self.act_dim))
        self.forward_model = nn.Sequential(nn.Linear(feature_dim + self.act_dim, hidden_dim), nn.ReLU(),
                                           nn.Linear(hidden_dim, feature_dim))
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"{owner}: beta must be in [0, 1], got {beta}")
        self.eta, self.beta = float(eta), float(beta)
        self.epochs, self.minibatch_size = int(epochs), int(minibatch_size)
        self.update_proportion = check_unit_interval(update_proportion, "update_proportion", owner)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self._last_bonus = None

    def losses(self, obs: Obs, next_obs: Obs, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(forward squared error float32[B], inverse loss float32[B])`` of a flat batch."""
        phi, phi_next = self.phi(obs), self.phi(next_obs)
        a = encode_actions(action, self.act_dim, self.discrete)
        pred = self.forward_model(torch.cat([phi, a], dim=-1))
        forward_err = (pred - phi_next).pow(2).sum(-1)
        head = self.inverse(torch.cat([phi, phi_next], dim=-1))
        if self.discrete:
            inverse = nn.functional.cross_entropy(head, action.reshape(-1).long(), reduction="none")
        else:
            inverse = (head - a).pow(2).mean(-1)
        return forward_err, inverse

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        lead = batch.reward.dim()
        forward_err, _ = self.losses(obs_flatten_leading(batch.obs, lead), obs_flatten_leading(batch.next_obs, lead),
                                     flatten_leading(batch.action, lead))
        bonus = (0.5 * self.eta * forward_err).reshape(batch.batch_shape)
        self._last_bonus = bonus
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        flat = batch.flatten()
        n = flat.reward.shape[0]
        device = flat.reward.device
        sums, steps = torch.zeros(2, device=device), 0
        for _ in range(self.epochs):
            for idx in minibatch_indices(n, self.update_proportion, self.minibatch_size, device):
                forward_err, inverse = self.losses(obs_index(flat.obs, idx), obs_index(flat.next_obs, idx), flat.action[idx])
                l_fwd, l_inv = 0.5 * forward_err.mean(), inverse.mean()
                loss = (1 - self.beta) * l_inv + self.beta * l_fwd
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                sums += torch.stack([l_fwd.detach(), l_inv.detach()])
                steps += 1
        sums = (sums / max(steps, 1)).tolist()
        return {"forward_loss": sums[0], "inverse_loss": sums[1], **bonus_metrics(self._last_bonus)}
