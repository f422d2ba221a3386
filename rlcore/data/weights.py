"""Per-transition sampling weights that reweight a dataset's trajectories by their return.

Hong, Agrawal, Tachet des Combes and Laroche, "Harnessing Mixed Offline RL Datasets via Trajectory
Weighting" (ICLR 2023). In a dataset made mostly of low-return trajectories with a few good ones, an
offline algorithm trained on uniform minibatches stays close to the poor majority. Drawing the
minibatches with more mass on the good trajectories lets the same algorithm, with the same losses and
hyperparameters, approach the best behaviour in the data. Only the sampler changes.

:func:`trajectory_weights` returns ``float64[M]`` (``M`` transitions) summing to 1; every transition of
trajectory ``i`` gets the same weight, so a trajectory's mass grows with its length, as in the paper
(the weights are a softmax over transitions). Modes:

* ``"uniform"``: ``1 / M``.
* ``"rw"`` (return weighting): ``g_i = (G_i - min G) / (max G - min G)``, the min-max normalised return
  of trajectory ``i``, and each of its transitions weighted ``exp(g_i / alpha)``.
* ``"aw"`` (advantage weighting): ``A_i = G_i - V(s0_i)``, the return over a baseline of the
  trajectory's first observation, min-max normalised to ``a_i`` and weighted ``exp(a_i / alpha)``. The
  baseline (``baseline=``):

  - ``"linear"``: ordinary least squares of ``G`` on the flattened first observations with an
    intercept, fitted and evaluated on the same trajectories: the paper's rule (its code uses
    scikit-learn's ``LinearRegression``). With no more trajectories than features the fit
    interpolates, every ``A_i`` is 0 and the weights are uniform; a warning says so.
  - ``"learned"``: a small network (the library's encoder for the observation space, then an MLP)
    regressed on ``(s0, G)``. Each trajectory's ``V(s0_i)`` comes from a model that did not see it
    (``folds``-fold cross-fitting), so a network that memorises its trajectories does not erase their
    advantages. The paper fits only linear baselines on vector observations: this is the library's
    extension for image (symbolic-grid) observations.
  - ``"auto"`` (default): ``"learned"`` for symbolic-grid observations, ``"linear"`` otherwise.
* ``"topk"``: uniform over the transitions of the trajectories whose return is among the best
  ``top_k_percent`` percent (at least one trajectory; ties at the cut are kept). The paper's
  filtering baseline.

``alpha`` (default 0.1, the paper's) is a temperature: ``alpha -> inf`` gives uniform weights.

Invariances. RW and top-k depend on the returns only through their order and min-max normalisation,
so scaling every reward by ``c > 0`` leaves them unchanged, and so does adding a constant to every
reward when all trajectories have the same length (``G -> c G + b T`` is then affine). With unequal
lengths a reward offset is not an affine map of the returns and the weights change, as in the paper.
Trajectories cut by the collection budget count with their partial returns.

The naive rule, a softmax of raw returns over ``alpha``, collapses all the mass onto the single best
trajectory as soon as returns are in the tens; the min-max normalisation is what keeps the top
trajectory's mass bounded (with ``alpha = 0.1`` the best and worst trajectories differ by ``e^10``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional

import gymnasium as gym
import torch
from torch import nn

from rlcore.data.dataset import DatasetError, TrajectoryDataset
from rlcore.data.sampler import UniformSampler, WeightedSampler
from rlcore.tensors import Obs, obs_index

#: sampler modes of :func:`trajectory_weights`
WEIGHT_MODES = ("uniform", "rw", "aw", "topk")
#: value baselines of the ``"aw"`` mode
BASELINES = ("auto", "linear", "learned")


def check_sampler_args(mode: str, alpha: float, top_k_percent: float = 10.0, baseline: str = "auto",
                       prefix: Optional[str] = None) -> None:
    """``ValueError`` naming the bad argument. With ``prefix`` (e.g. ``"dataset."``, the training app's
    config keys) the names are ``<prefix>sampler``, ``<prefix>alpha``, ...; else ``sampler mode``,
    ``sampler alpha``, ..."""
    def name(arg: str) -> str:
        if prefix is None:
            return f"sampler {'mode' if arg == 'sampler' else arg}"
        return f"{prefix}{arg}"

    if mode not in WEIGHT_MODES:
        raise ValueError(f"{name('sampler')} must be one of {', '.join(WEIGHT_MODES)}, got {mode!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"{name('alpha')} must be a finite number > 0, got {alpha!r}")
    if isinstance(top_k_percent, bool) or not (isinstance(top_k_percent, (int, float)) and 0 < float(top_k_percent) <= 100):
        raise ValueError(f"{name('top_k_percent')} must lie in (0, 100], got {top_k_percent!r}")
    if baseline not in BASELINES:
        raise ValueError(f"{name('baseline')} must be one of {', '.join(BASELINES)}, got {baseline!r}")


def _min_max(x: torch.Tensor) -> torch.Tensor:
    """``(x - min) / (max - min)``; all zeros when every entry is equal."""
    span = x.max() - x.min()
    return torch.where(span > 0, (x - x.min()) / span.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(x))


def _per_transition(dataset: TrajectoryDataset, episode_logits: torch.Tensor) -> torch.Tensor:
    """Softmax over transitions of the per-episode ``episode_logits: float64[E]``: float64[M]."""
    logits = episode_logits - episode_logits.max()  # the shift cancels in the normalisation
    mass = torch.exp(logits)[dataset.episode_id]
    return mass / mass.sum()


def _observation_space(dataset: TrajectoryDataset) -> Optional[gym.Space]:
    meta = dataset.metadata.get("observation_space")
    if meta is None:
        return None
    from rlcore.spaces import space_from_dict

    return space_from_dict(meta)


def _flat_features(obs: Obs) -> torch.Tensor:
    """float64[E, D]: every key of a dict observation (sorted) or the tensor, flattened and concatenated."""
    parts = [obs[k] for k in sorted(obs)] if isinstance(obs, dict) else [obs]
    return torch.cat([p.reshape(p.shape[0], -1).double() for p in parts], dim=1)


def linear_baseline(first_obs: Obs, returns: torch.Tensor) -> torch.Tensor:
    """``V(s0): float64[E]``, least squares of ``returns: float[E]`` on the flattened first observations
    with an intercept (minimum-norm solution when under-determined), evaluated on the same points."""
    x = _flat_features(first_obs)
    design = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1)
    y = returns.double().unsqueeze(1)
    # centre and scale the columns for conditioning; the intercept column stays as it is
    mean = design[:, :-1].mean(0, keepdim=True)
    scale = design[:, :-1].std(0, keepdim=True).nan_to_num(0.0)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    design = torch.cat([(design[:, :-1] - mean) / scale, design[:, -1:]], dim=1)
    solution = torch.linalg.lstsq(design.cpu(), y.cpu(), driver="gelsd").solution.to(design.device)
    return (design @ solution).squeeze(1)


class _ValueNet(nn.Module):
    """``V(s0)``: the flattened observation (the library's ``mlp`` encoder; a symbolic grid as its flat
    image), then a 64x64 tanh MLP to a scalar."""

    def __init__(self, space: gym.Space) -> None:
        super().__init__()
        from rlcore.nets import make_encoder

        self.encoder = make_encoder(space, "mlp", owner="the aw sampler's learned baseline")
        self.head = nn.Sequential(nn.Linear(self.encoder.out_dim, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                                  nn.Linear(64, 1))

    def forward(self, obs: Obs) -> torch.Tensor:
        return self.head(self.encoder(obs)).squeeze(-1)


def learned_baseline(first_obs: Obs, returns: torch.Tensor, space: gym.Space, *, folds: int = 5, steps: int = 500,
                     lr: float = 1e-3, weight_decay: float = 1e-4, seed: int = 0) -> torch.Tensor:
    """``V(s0): float64[E]`` from a network regressed on ``(first_obs, returns)`` with ``folds``-fold
    cross-fitting: trajectory ``i``'s value comes from the model trained on the other folds.

    Returns are standardised for the fit and mapped back. Full-batch Adam for ``steps`` steps per fold
    on the observations' device; the folds come from a ``torch.Generator`` seeded with ``seed``.
    """
    E = int(returns.shape[0])
    device = returns.device
    folds = max(2, min(int(folds), E))
    gen = torch.Generator().manual_seed(int(seed))
    fold_of = torch.randperm(E, generator=gen).remainder(folds).to(device)
    y = returns.double()
    mu, sd = y.mean(), y.std().clamp_min(1e-8)
    target = ((y - mu) / sd).float()
    values = torch.zeros(E, dtype=torch.float64, device=device)
    for k in range(folds):
        train = (fold_of != k).nonzero().squeeze(1)
        held = (fold_of == k).nonzero().squeeze(1)
        torch.manual_seed(int(seed) * 1009 + k)  # the network's initialisation
        net = _ValueNet(space).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        x_train = obs_index(first_obs, train)
        for _ in range(int(steps)):
            loss = (net(x_train) - target[train]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            values[held] = net(obs_index(first_obs, held)).double() * sd + mu
    return values


def _first_observations(dataset: TrajectoryDataset) -> Obs:
    return obs_index(dataset.obs, dataset.episode_start.nonzero().squeeze(1))


def trajectory_weights(dataset: TrajectoryDataset, mode: str = "uniform", alpha: float = 0.1, *,
                       top_k_percent: float = 10.0, baseline: str = "auto", folds: int = 5,
                       seed: int = 0) -> torch.Tensor:
    """Sampling weights ``float64[M]`` over the dataset's transitions, summing to 1 (see the module
    docstring for the modes and the paper). Raises :class:`~rlcore.data.DatasetError` for an empty
    dataset and ``ValueError`` naming the bad argument."""
    check_sampler_args(mode, alpha, top_k_percent, baseline)
    M, E = len(dataset), dataset.num_episodes
    if M == 0 or E == 0:
        raise DatasetError("trajectory_weights: the dataset holds no transitions")
    device = dataset.device
    if mode == "uniform" or E == 1:
        return torch.full((M,), 1.0 / M, dtype=torch.float64, device=device)
    returns = dataset.episode_return.double()
    if mode == "rw":
        return _per_transition(dataset, _min_max(returns) / float(alpha))
    if mode == "topk":
        keep = max(1, math.ceil(E * float(top_k_percent) / 100.0))
        cut = torch.topk(returns, keep).values.min()
        selected = (returns >= cut).double()
        mass = selected[dataset.episode_id]
        return mass / mass.sum()
    # advantage weighting
    space = _observation_space(dataset)
    if baseline == "auto":
        from rlcore.nets import is_grid_space

        baseline = "learned" if space is not None and is_grid_space(space) else "linear"
    first = _first_observations(dataset)
    if baseline == "linear":
        values = linear_baseline(first, returns)
        if float((returns - values).abs().max()) <= 1e-6 * max(1.0, float(returns.abs().max())):
            warnings.warn(f"trajectory_weights(mode='aw'): the linear baseline fits all {E} returns exactly "
                          f"(no more trajectories than observation features), so every advantage is 0 and the "
                          f"weights are uniform; use baseline='learned' or more trajectories", stacklevel=2)
            values = returns.clone()  # the residuals are rounding noise, which min-max would blow up to [0, 1]
    else:
        if space is None:
            raise DatasetError("trajectory_weights(mode='aw', baseline='learned') needs the dataset's "
                               "metadata['observation_space'] to build its value network")
        values = learned_baseline(first, returns, space, folds=folds, seed=seed)
    return _per_transition(dataset, _min_max(returns - values) / float(alpha))


def make_sampler(dataset: TrajectoryDataset, mode: str = "uniform", alpha: float = 0.1, **kwargs: Any):
    """The sampler for ``mode``: :class:`UniformSampler` for ``"uniform"``, else a
    :class:`WeightedSampler` over :func:`trajectory_weights` (``kwargs`` go to it)."""
    if mode == "uniform":
        check_sampler_args(mode, alpha, kwargs.get("top_k_percent", 10.0), kwargs.get("baseline", "auto"))
        if len(dataset) == 0:
            raise DatasetError("make_sampler: the dataset holds no transitions")
        return UniformSampler(len(dataset), dataset.device)
    return WeightedSampler(trajectory_weights(dataset, mode, alpha, **kwargs))
