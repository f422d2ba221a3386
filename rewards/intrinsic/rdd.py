"""RDD: Random Distribution Distillation (Fang et al. 2025, "Exploration by Random Distribution
Distillation", arXiv:2505.11044).

The target of RND becomes a distribution: for a state ``s`` the target output is a fresh sample

    f_tar(s) ~ N(mu(s), sigma(s)^2 I)

drawn *each time* the state is used to train the predictor, with ``mu`` a fixed random network
(and, in the paper's formulation, ``sigma`` from another fixed random network). The predictor
``f`` minimises ``||f(s) - f_tar(s)||^2``, so after ``n`` visits its least-squares optimum at ``s``
is the mean of ``n`` draws and the bonus, measured against the target *mean* (the paper's Eq. 11),

    b(s) = (1 / d) * ||f(s) - mu(s)||^2

is bounded by the paper's decomposition ``sigma^2(s) / n + E||f*_n(s) - f(s)||^2``: a pseudo-count
term that decays as ``1/n`` (the sample mean's variance) plus the predictor's discrepancy from that
optimum. Paper hyperparameters for non-Atari tasks: hidden width 64, output dimension 64, ReLU, Adam
with lr 3e-4, target standard deviation 1; the paper's implementation uses one fixed ``sigma`` for
all states rather than a state-dependent one.

What is implemented:

* ``mu``: a fixed random feature network (the RND target architecture, ``rewards.intrinsic.rnd``),
  with RND's observation normalisation for Box observations (running mean/std, clip to [-5, 5]).
* ``sigma``: the constant ``sigma`` (default, as in the paper's implementation), or with
  ``state_dependent_std=True``, ``sigma(s) = sigma * 2 * sigmoid(h(s))`` with ``h`` a fixed random
  network (values in ``(0, 2 sigma)``), following the paper's formulation.
* the predictor regresses to a new draw of ``f_tar(s)`` every time a sample enters a minibatch in
  ``update`` (``epochs`` x ``update_proportion`` of the rollout, as in RND).
* ``compute`` returns Eq. 11's ``b(s')`` on the state reached (deterministic given the networks);
  with ``variance_normalized=True`` it returns ``b(s') / sigma(s')^2``, the statistic ``z_n`` of the
  paper's analysis (an estimator of ``1/n`` for a converged predictor), which differs from Eq. 11
  only by a constant when ``sigma`` is constant.

The formulation was taken from the arXiv preprint as quoted in secondary notes (Eq. 11, the target
sampling rule, the bound and the hyperparameters); deviations, stated: network sizes follow this
library's small defaults on top of the shared encoders, and the bonus is not normalised here (the
combiner does that).
"""

from __future__ import annotations

from typing import Optional

import gymnasium as gym
import torch

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.rnd import DistillationBonus, ObsNormalizer, check_unit_interval, feature_net
from rlcore.tensors import Obs


class RDD(DistillationBonus, IntrinsicBonus):
    """Random Distribution Distillation bonus (global, non-episodic).

    Args:
        observation_space, action_space: single-env spaces (the action space is not used).
        feature_dim: output size ``d`` of the target distribution and the predictor (paper: 64).
        hidden_dim: hidden width (paper: 64).
        encoder: ``"auto"`` (the MiniGrid CNN without pooling for MiniGrid dicts, flatten otherwise),
            ``"mlp"``, ``"grid_nopool"`` or the policies' pooled ``"grid"`` / ``"minigrid"`` (see
            ``rewards.intrinsic.features.bonus_encoder``).
        sigma: target standard deviation (paper: 1).
        state_dependent_std: ``sigma(s) = sigma * 2 * sigmoid(h(s))`` from a fixed random ``h``.
        variance_normalized: return ``b(s) / sigma(s)^2`` instead of ``b(s)``.
        lr, epochs, minibatch_size, update_proportion: predictor training per rollout (paper lr: 3e-4).
        normalize_obs, obs_clip: RND's observation normalisation for Box observations.
    """

    name = "rdd"
    episodic = False

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, feature_dim: int = 64,
                 hidden_dim: int = 64, encoder: str = "auto", sigma: float = 1.0, state_dependent_std: bool = False,
                 variance_normalized: bool = False, lr: float = 3e-4, epochs: int = 4, minibatch_size: int = 1024,
                 update_proportion: float = 0.25, normalize_obs: bool = True, obs_clip: float = 5.0) -> None:
        super().__init__(observation_space, action_space)
        owner = f"bonus '{self.name}'"
        if not sigma > 0:
            raise ValueError(f"{owner}: sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)
        self.feature_dim = int(feature_dim)
        self.variance_normalized = bool(variance_normalized)
        self.obs_norm = ObsNormalizer(observation_space, normalize_obs, obs_clip)
        self.target_mean = feature_net(observation_space, owner, feature_dim, hidden_dim, 1, encoder)
        self.target_std = (feature_net(observation_space, owner, feature_dim, hidden_dim, 1, encoder)
                           if state_dependent_std else None)
        self.predictor = feature_net(observation_space, owner, feature_dim, hidden_dim, 2, encoder)
        self.target_mean.requires_grad_(False)
        if self.target_std is not None:
            self.target_std.requires_grad_(False)
        self.epochs, self.minibatch_size = int(epochs), int(minibatch_size)
        self.update_proportion = check_unit_interval(update_proportion, "update_proportion", owner)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=lr)
        self._last_bonus: Optional[torch.Tensor] = None

    @torch.no_grad()
    def target_distribution(self, x: Obs) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, sigma)`` of the target distribution, each ``float32[B, d]`` (x: normalised obs)."""
        mu = self.target_mean(x)
        if self.target_std is None:
            return mu, torch.full_like(mu, self.sigma)
        return mu, self.sigma * 2.0 * torch.sigmoid(self.target_std(x))

    @torch.no_grad()
    def novelty(self, obs: Obs) -> torch.Tensor:
        """``float32[B]``: ``(1/d) ||f(s) - mu(s)||^2`` (divided by ``sigma(s)^2`` if variance_normalized)."""
        x = self.obs_norm(obs)
        mu, std = self.target_distribution(x)
        sq = (self.predictor(x) - mu).pow(2)
        if self.variance_normalized:
            sq = sq / std.pow(2)
        return sq.mean(-1)

    def distillation_loss(self, obs: Obs) -> torch.Tensor:
        """Predictor loss on a flat minibatch: squared error to a fresh draw of the target distribution."""
        x = self.obs_norm(obs)
        mu, std = self.target_distribution(x)
        sample = mu + std * torch.randn_like(mu)          # a new draw every time s is used
        return (self.predictor(x) - sample).pow(2).mean()

