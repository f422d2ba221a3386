"""RND: Random Network Distillation (Burda et al. 2019, "Exploration by Random Network Distillation").

A fixed, randomly initialised target network ``g`` maps an observation to features; a predictor
``f`` is trained to regress them on the observations the agent reaches. The bonus of a transition is
the prediction error on the state reached, ``s'``:

    b(s') = mean_j (f(x')_j - g(x')_j)^2,        x' = clip((s' - mu) / sigma, -5, 5)

(squared error averaged over the ``feature_dim`` outputs, as in the reference implementation).
Observations of Box spaces are normalised by running mean/std and clipped to ``[-5, 5]`` before both
networks, as in the paper. For MiniGrid dict observations both networks start with the MiniGrid
embedding CNN without pooling (``rlcore.nets.GridEncoder(pool=False)``: three 2x2 convolutions keep a
4x4 map of the 7x7 view, then 512 ReLU features, RLeXplore's MiniGrid encoder), so where things are
in the view reaches the bonus (the policies' pooled CNN ends at one 1x1 cell); the target's
embeddings, like all its weights, stay fixed. The predictor is deeper than the target (two hidden
layers against one), as in the paper; linear layers get orthogonal initialisation (gain sqrt(2)).

Feature source (``features``, see ``rewards.intrinsic.features``): ``"obs"`` (default) scores the
policy's observation; ``"state"`` scores privileged MiniGrid state instead (the whole grid, the
agent's cell and the carried object, from ``env.get_state()``) while the policy stays egocentric.
The default is the observation because it already ranks a newly reached cell above a new heading in
a visited cell (``tests/test_intrinsic_position.py``).

``compute`` first folds the rollout's ``next_obs`` into the observation statistics, then scores
(so the first rollout plays the part of the paper's initialisation of the statistics by a random
agent). ``update`` trains the predictor for ``epochs`` passes over a random ``update_proportion`` of
the rollout's transitions (paper: 0.25; the paper masks samples out of each minibatch's loss, here
each epoch draws its subset up front), in minibatches of ``minibatch_size``, with Adam at ``lr``.

Deviations, stated: observations of MiniGrid/Discrete spaces are not normalised (they are integer
codes, embedded or one-hot encoded); networks are small MLPs on top of the bonuses' encoders rather
than the paper's Atari CNNs; with ``features="state"`` the bonus reads privileged state, which the
paper's agent never had; the bonus is not normalised here (that is the combiner's job,
``rewards.intrinsic.combine.IntrinsicReward``, which divides by the running std of intrinsic returns
as the paper does).

This module also holds the pieces shared by the other distillation bonuses (RDD, NovelD) and the
random/learned feature bonuses (ICM, Disagreement, RE3): observation normalisation, feature networks,
flattening of ``[T, N]`` or ``[N]`` batches and the space checks.
"""

from __future__ import annotations

import copy
import math
from typing import Optional

import gymnasium as gym
import torch
from torch import nn

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.features import bonus_encoder
from rlcore.batch import TransitionBatch
from rlcore.nets import is_grid_space
from rlcore.normalization import RunningMeanStd
from rlcore.tensors import Obs, obs_flatten_leading, obs_index

# ----------------------------------------------------------------------------------- shared pieces


def check_obs_space(space: gym.Space, owner: str, encoder: str = "auto") -> None:
    """Raise ``ValueError`` naming ``owner`` and ``space`` if the shared encoders cannot embed it.

    Supported: MiniGrid dict observations (embedding CNN or flattened image), Discrete (one-hot) and
    Box observations of 1 to 3 dims (flattened for the MLP encoder).
    """
    if is_grid_space(space) or isinstance(space, gym.spaces.Discrete):
        return
    if isinstance(space, gym.spaces.Box):
        if encoder in ("auto", "mlp") and not 1 <= len(space.shape) <= 3:
            raise ValueError(f"{owner} cannot embed observation space {space}: the MLP encoder takes Box "
                             f"observations with 1 to 3 dims, got {len(space.shape)}")
        return
    raise ValueError(f"{owner} cannot embed observation space {space}: supported are Box (1-3 dims), "
                     "Discrete and MiniGrid dict observations")


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Orthogonal weights and zero biases for every linear layer of ``module`` (as in RND's code)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain)
            nn.init.zeros_(m.bias)
    return module


def feature_net(space: gym.Space, owner: str, out_dim: int, hidden_dim: int = 128, hidden_layers: int = 1,
                encoder: str = "auto", features: str = "obs") -> nn.Module:
    """Bonus encoder -> ``hidden_layers`` x (Linear, ReLU) -> Linear(out_dim).

    The encoder is :func:`rewards.intrinsic.features.bonus_encoder`: for ``features="obs"`` the
    symbolic-grid CNN without pooling (``encoder="auto"``, 512 features) or a flatten; for
    ``features="state"`` the privileged-state encoder.
    """
    check_obs_space(space, owner, encoder)
    enc = bonus_encoder(space, owner, features, encoder)
    layers: list[nn.Module] = [enc]
    width = enc.out_dim
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden_dim), nn.ReLU()]
        width = hidden_dim
    layers.append(nn.Linear(width, out_dim))
    return orthogonal_init(nn.Sequential(*layers))


class ObsNormalizer(nn.Module):
    """Running mean/std normalisation with clipping for Box observations; identity for other spaces."""

    def __init__(self, space: gym.Space, enabled: bool = True, clip: float = 5.0) -> None:
        super().__init__()
        self.enabled = bool(enabled) and isinstance(space, gym.spaces.Box)
        self.clip = float(clip)
        self.stats = RunningMeanStd(tuple(space.shape)) if self.enabled else None

    @torch.no_grad()
    def update(self, obs: Obs) -> None:
        if self.enabled:
            self.stats.update(obs.float())

    def forward(self, obs: Obs) -> Obs:
        if not self.enabled:
            return obs
        return self.stats.normalize(obs.float(), clip=self.clip)


class OptimizerState:
    """Mixin: the module's ``optimizer`` state travels in its ``state_dict`` (extra state)."""

    optimizer: torch.optim.Optimizer

    def get_extra_state(self):
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state) -> None:
        # deep copy: Optimizer.load_state_dict keeps same-device tensors by reference, and an in-memory
        # state_dict shared between two modules must not couple their optimisers
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))


class DistillationBonus(OptimizerState):
    """Mixin for predictor-vs-target bonuses scored on ``next_obs`` (RND, RDD).

    ``compute`` updates the observation statistics on the states reached, then scores them with the
    subclass's ``novelty(obs)``; ``update`` trains the predictor on them with the subclass's
    ``distillation_loss(obs)``.
    """

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        next_obs = obs_flatten_leading(batch.next_obs, batch.reward.dim())
        self.obs_norm.update(next_obs)
        bonus = self.novelty(next_obs).reshape(batch.batch_shape)
        self._last_bonus = bonus
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        loss = self.fit(obs_flatten_leading(batch.next_obs, batch.reward.dim()))
        return {"loss": float(loss), **bonus_metrics(self._last_bonus)}

    def fit(self, obs: Obs, epochs: Optional[int] = None) -> torch.Tensor:
        """Train the predictor on a flat observation batch (a random ``update_proportion`` of it per
        epoch, in minibatches) with the subclass's ``distillation_loss``; returns the mean loss (a
        tensor, no sync)."""
        n = next(iter(obs.values())).shape[0] if isinstance(obs, dict) else obs.shape[0]
        device = next(self.predictor.parameters()).device
        total, steps = torch.zeros((), device=device), 0
        for _ in range(self.epochs if epochs is None else epochs):
            for idx in minibatch_indices(n, self.update_proportion, self.minibatch_size, device):
                loss = self.distillation_loss(obs_index(obs, idx))
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += loss.detach()
                steps += 1
        return total / max(steps, 1)


def minibatch_indices(n: int, proportion: float, minibatch_size: int, device: torch.device):
    """Indices of one epoch: a random ``proportion`` of ``range(n)``, cut into minibatches."""
    keep = max(1, int(round(n * proportion)))
    perm = torch.randperm(n, device=device)[:keep]
    return [perm[i:i + minibatch_size] for i in range(0, keep, minibatch_size)]


def check_unit_interval(value: float, name: str, owner: str) -> float:
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{owner}: {name} must be in (0, 1], got {value}")
    return float(value)


# ---------------------------------------------------------------------------------------- RND


class RND(DistillationBonus, IntrinsicBonus):
    """Random Network Distillation bonus (global, non-episodic).

    Args:
        observation_space, action_space: single-env spaces (the action space is not used).
        feature_dim: output size of target and predictor.
        hidden_dim: width of the hidden layers.
        encoder: for ``features="obs"``: ``"auto"`` (the MiniGrid CNN without pooling, ``"grid_nopool"``,
            for MiniGrid dicts; flatten otherwise), ``"mlp"``, ``"grid_nopool"`` or the policies' pooled
            ``"grid"`` / ``"minigrid"`` (position pooled away).
        lr: Adam learning rate of the predictor (paper: 1e-4).
        epochs: passes over the rollout per ``update`` (paper: 4, as PPO's epochs).
        minibatch_size: transitions per gradient step.
        update_proportion: fraction of the rollout's transitions used per epoch (paper: 0.25).
        normalize_obs: normalise Box observations by running mean/std (paper: yes).
        obs_clip: clip normalised observations to ``[-obs_clip, obs_clip]`` (paper: 5).
        features: ``"obs"`` (default), ``"state"`` (privileged information: the bonus is computed
            from MiniGrid's ``grid``, ``agent_pos`` and ``carrying`` state, which learners then record)
            or ``"auto"`` (``"state"`` for MiniGrid observations); see ``rewards.intrinsic.features``.
    """

    name = "rnd"
    episodic = False

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, feature_dim: int = 64,
                 hidden_dim: int = 128, encoder: str = "auto", lr: float = 1e-4, epochs: int = 4,
                 minibatch_size: int = 1024, update_proportion: float = 0.25, normalize_obs: bool = True,
                 obs_clip: float = 5.0, features: str = "obs") -> None:
        super().__init__(observation_space, action_space)
        owner = f"bonus '{self.name}'"
        features = self.set_features(features)
        self.obs_norm = ObsNormalizer(observation_space, normalize_obs and features == "obs", obs_clip)
        self.target = feature_net(observation_space, owner, feature_dim, hidden_dim, 1, encoder, features)
        self.predictor = feature_net(observation_space, owner, feature_dim, hidden_dim, 2, encoder, features)
        self.target.requires_grad_(False)
        self.epochs, self.minibatch_size = int(epochs), int(minibatch_size)
        self.update_proportion = check_unit_interval(update_proportion, "update_proportion", owner)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=lr)
        self._last_bonus: Optional[torch.Tensor] = None

    def errors(self, obs: Obs) -> torch.Tensor:
        """Per-sample squared errors ``float32[B, feature_dim]`` of a flat, raw observation batch."""
        x = self.obs_norm(obs)
        with torch.no_grad():
            target = self.target(x)
        return (self.predictor(x) - target).pow(2)

    @torch.no_grad()
    def novelty(self, obs: Obs, squared: bool = True) -> torch.Tensor:
        """``float32[B]``: mean squared error (``squared``) or L2 norm of the error, of a flat batch."""
        err = self.errors(obs)
        return err.mean(-1) if squared else err.sum(-1).sqrt()

    def distillation_loss(self, obs: Obs) -> torch.Tensor:
        """Predictor loss on a flat minibatch: mean squared error to the fixed target."""
        return self.errors(obs).mean()


def bonus_metrics(bonus: Optional[torch.Tensor]) -> dict[str, float]:
    """``bonus_mean`` / ``bonus_std`` of the last computed bonus (empty if none yet)."""
    if bonus is None:
        return {}
    return {"bonus_mean": float(bonus.mean()), "bonus_std": float(bonus.float().std()) if bonus.numel() > 1 else 0.0}
