"""Trajectory weighting (Hong et al. 2023): the weights' formulas, invariances and failure modes, and
D4RL-style array segmentation."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcore.data import DatasetError, TrajectoryDataset, WeightedSampler, make_sampler, trajectory_weights
from rlcore.spaces import space_to_dict


def _dataset(lengths, returns, obs_dim: int = 3, seed: int = 0, obs=None) -> TrajectoryDataset:
    """Episodes of the given lengths whose rewards sum to ``returns`` (all on the last step), every
    episode terminated."""
    rng = np.random.default_rng(seed)
    M = int(sum(lengths))
    rewards = np.zeros(M, np.float32)
    terminals = np.zeros(M, bool)
    ends = np.cumsum(lengths) - 1
    rewards[ends] = returns
    terminals[ends] = True
    observations = rng.normal(size=(M, obs_dim)).astype(np.float32) if obs is None else obs
    return TrajectoryDataset.from_arrays(observations=observations, actions=rng.integers(0, 3, M), rewards=rewards,
                                         terminals=terminals)


def _episode_mass(ds: TrajectoryDataset, w: torch.Tensor) -> torch.Tensor:
    return torch.zeros(ds.num_episodes, dtype=torch.float64).index_add_(0, ds.episode_id, w)


@pytest.mark.parametrize("mode", ["uniform", "rw", "aw", "topk"])
def test_weights_are_a_distribution_over_transitions(mode):
    ds = _dataset([5, 9, 3, 7, 11, 4] * 4, np.linspace(-2, 5, 24), obs_dim=2)
    w = trajectory_weights(ds, mode)
    assert w.shape == (len(ds),) and w.dtype == torch.float64
    assert torch.all(w >= 0)
    assert abs(float(w.sum()) - 1.0) < 1e-12
    # every transition of a trajectory carries the same weight
    for e in range(ds.num_episodes):
        we = w[ds.episode_id == e]
        assert torch.allclose(we, we[0].expand_as(we))


def test_rw_matches_the_papers_formula():
    lengths = [4, 6, 2, 8]
    returns = np.array([1.0, 3.0, 0.0, 2.0])
    ds = _dataset(lengths, returns)
    alpha = 0.5
    g = (returns - returns.min()) / (returns.max() - returns.min())
    per_transition = np.repeat(np.exp(g / alpha), lengths)
    expected = per_transition / per_transition.sum()
    assert np.allclose(trajectory_weights(ds, "rw", alpha).numpy(), expected, rtol=1e-10)
    # longer trajectories carry proportionally more mass
    mass = _episode_mass(ds, trajectory_weights(ds, "rw", alpha)).numpy()
    assert np.allclose(mass / mass.sum(), np.array(lengths) * np.exp(g / alpha) / (np.array(lengths) * np.exp(g / alpha)).sum())


def test_aw_with_the_linear_baseline_matches_the_papers_formula():
    rng = np.random.default_rng(1)
    E, T = 40, 5
    s0 = rng.normal(size=(E, 2)).astype(np.float32).astype(np.float64)
    returns = 3.0 * s0[:, 0] - s0[:, 1] + rng.normal(scale=0.5, size=E)
    obs = np.repeat(s0, T, axis=0).astype(np.float32)
    ds = _dataset([T] * E, returns, obs=obs)
    X = np.concatenate([s0, np.ones((E, 1))], axis=1)
    coef, *_ = np.linalg.lstsq(X, returns.astype(np.float32).astype(np.float64), rcond=None)
    adv = returns.astype(np.float32) - X @ coef
    a = (adv - adv.min()) / (adv.max() - adv.min())
    expected = np.repeat(np.exp(a / 0.1), T)
    expected /= expected.sum()
    got = trajectory_weights(ds, "aw", 0.1, baseline="linear").numpy()
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-12)
    # the most advantageous trajectory carries the most mass
    assert int(_episode_mass(ds, torch.as_tensor(got)).argmax()) == int(np.argmax(adv))


def test_topk_keeps_the_best_trajectories_uniformly():
    returns = np.arange(20, dtype=np.float64)
    lengths = [3] * 10 + [5] * 10
    ds = _dataset(lengths, returns)
    w = trajectory_weights(ds, "topk", top_k_percent=10)
    mass = _episode_mass(ds, w)
    assert set(mass.nonzero().squeeze(1).tolist()) == {18, 19}
    assert torch.allclose(w[w > 0], torch.full_like(w[w > 0], 1 / 10))
    # at least one trajectory, even for a tiny percentage
    assert _episode_mass(ds, trajectory_weights(ds, "topk", top_k_percent=0.1)).nonzero().squeeze(1).tolist() == [19]


@pytest.mark.parametrize("mode", ["rw", "aw", "topk"])
def test_weights_are_invariant_to_positive_affine_reward_maps_on_fixed_horizons(mode):
    T, E = 6, 30
    rng = np.random.default_rng(2)
    obs = rng.normal(size=(T * E, 2)).astype(np.float32)
    rewards = rng.normal(size=T * E).astype(np.float32)
    terminals = np.zeros(T * E, bool)
    terminals[T - 1::T] = True
    actions = rng.integers(0, 3, T * E)

    def weights(r):
        ds = TrajectoryDataset.from_arrays(observations=obs, actions=actions, rewards=r, terminals=terminals)
        return trajectory_weights(ds, mode, 0.1, baseline="linear")

    base = weights(rewards)
    assert torch.allclose(base, weights(rewards * 250.0 + 3.0), rtol=1e-4, atol=1e-9)
    assert torch.allclose(base, weights(rewards * 0.01), rtol=1e-4, atol=1e-9)


def test_scaling_rewards_leaves_rw_unchanged_with_unequal_lengths():
    ds = _dataset([3, 8, 5, 2, 9], [0.2, 1.0, 0.5, 0.1, 0.7])
    big = _dataset([3, 8, 5, 2, 9], [200.0, 1000.0, 500.0, 100.0, 700.0])
    assert torch.allclose(trajectory_weights(ds, "rw"), trajectory_weights(big, "rw"), rtol=1e-9)


@pytest.mark.parametrize("mode", ["rw", "aw"])
def test_large_alpha_gives_uniform_weights(mode):
    ds = _dataset([4, 7, 2, 9] * 5, np.linspace(0, 10, 20), obs_dim=1)
    w = trajectory_weights(ds, mode, alpha=1e9, baseline="linear")
    assert torch.allclose(w, torch.full_like(w, 1 / len(ds)), rtol=1e-6)


def test_returns_in_the_thousands_do_not_collapse_onto_one_trajectory():
    E = 100
    returns = np.linspace(0.0, 3000.0, E)
    ds = _dataset([50] * E, returns)
    mass = _episode_mass(ds, trajectory_weights(ds, "rw", 0.1))
    assert float(mass.max()) < 0.15
    assert int((mass > 1e-3).sum()) >= 20
    # the rule the issue warns about: a softmax of raw returns over alpha puts everything on one
    naive = torch.softmax(torch.as_tensor(returns) / 0.1, 0)
    assert float(naive.max()) > 0.999


def test_equal_returns_give_uniform_weights():
    ds = _dataset([3, 5, 7], [1.0, 1.0, 1.0])
    for mode in ("rw", "topk"):
        w = trajectory_weights(ds, mode)
        assert torch.allclose(w, torch.full_like(w, 1 / len(ds)))


def test_linear_baseline_that_interpolates_warns():
    ds = _dataset([4, 4, 4], [0.0, 1.0, 2.0], obs_dim=5)
    with pytest.warns(UserWarning, match="fits all 3 returns exactly"):
        w = trajectory_weights(ds, "aw", baseline="linear")
    assert torch.allclose(w, torch.full_like(w, 1 / len(ds)))


def test_learned_baseline_on_grid_observations_cross_fits():
    space = gym.spaces.Dict({"image": gym.spaces.Box(0, 10, (5, 5, 3), np.uint8), "direction": gym.spaces.Discrete(4)})
    rng = np.random.default_rng(3)
    E, T = 24, 3
    image = rng.integers(0, 6, size=(E, 5, 5, 3)).astype(np.uint8)
    lucky = np.zeros(E)
    lucky[::4] = 1.0  # advantage: these trajectories did better than their start predicts
    returns = image[:, 2, 2, 0].astype(np.float64) / 5.0 + lucky
    obs = {"image": np.repeat(image, T, axis=0), "direction": np.zeros(E * T, np.int64)}
    ds = _dataset([T] * E, returns, obs=obs)
    ds.metadata["observation_space"] = space_to_dict(space)
    w = trajectory_weights(ds, "aw")  # auto: the learned baseline for grid observations
    mass = _episode_mass(ds, w)
    assert abs(float(mass.sum()) - 1) < 1e-12
    # cross-fitted values do not erase the advantages: the lucky trajectories get more mass on average
    assert float(mass[lucky == 1].mean()) > float(mass[lucky == 0].mean())
    # reproducible
    assert torch.equal(w, trajectory_weights(ds, "aw"))


def test_learned_baseline_needs_the_observation_space():
    ds = _dataset([3, 4, 5], [0.0, 1.0, 2.0])
    with pytest.raises(DatasetError, match="metadata\\['observation_space'\\]"):
        trajectory_weights(ds, "aw", baseline="learned")


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "softmax"}, "sampler mode must be one of uniform, rw, aw, topk, got 'softmax'"),
    ({"mode": "rw", "alpha": 0.0}, "sampler alpha must be a finite number > 0, got 0.0"),
    ({"mode": "rw", "alpha": -1}, "sampler alpha must be a finite number > 0"),
    ({"mode": "aw", "alpha": math.inf}, "sampler alpha must be a finite number > 0"),
    ({"mode": "topk", "top_k_percent": 0}, "sampler top_k_percent must lie in"),
    ({"mode": "aw", "baseline": "mlp"}, "sampler baseline must be one of auto, linear, learned"),
])
def test_bad_sampler_arguments_name_the_argument(kwargs, message):
    ds = _dataset([3, 4], [0.0, 1.0])
    with pytest.raises(ValueError, match=message):
        trajectory_weights(ds, **kwargs)
    with pytest.raises(ValueError, match=message):
        make_sampler(ds, **kwargs)


def test_make_sampler_draws_by_the_weights():
    ds = _dataset([2, 2, 2, 2], [0.0, 0.0, 0.0, 1.0])
    sampler = make_sampler(ds, "rw", 0.1)
    assert isinstance(sampler, WeightedSampler)
    idx = sampler.sample(20000, generator=torch.Generator().manual_seed(0))
    share_best = float((ds.episode_id[idx] == 3).double().mean())
    w_best = math.exp(10) / (math.exp(10) + 3)
    assert abs(share_best - w_best) < 0.01


# ------------------------------------------------------------------ D4RL-style arrays
def test_from_arrays_segments_on_terminals_or_timeouts_and_cuts_the_last_episode():
    M = 10
    terminals = np.zeros(M, bool)
    timeouts = np.zeros(M, bool)
    terminals[2] = True
    timeouts[5] = True
    terminals[7] = timeouts[7] = True  # both set: the termination wins
    ds = TrajectoryDataset.from_arrays(observations=np.arange(M, dtype=np.float32)[:, None], actions=np.zeros(M, np.int64),
                                       rewards=np.ones(M, np.float32), terminals=terminals, timeouts=timeouts)
    assert ds.episode_length.tolist() == [3, 3, 2, 2]
    assert ds.terminated.nonzero().squeeze(1).tolist() == [2, 7]
    assert ds.truncated.nonzero().squeeze(1).tolist() == [5, 9]  # the unterminated final episode is cut at the end
    assert ds.episode_cut.tolist() == [False, False, False, True] and ds.num_complete_episodes == 3
    assert ds.episode_return.tolist() == [3.0, 3.0, 2.0, 2.0]
    # next observations follow inside an episode and stay put at its end
    assert ds.next_obs[:, 0].tolist() == [1, 2, 2, 4, 5, 5, 7, 7, 9, 9]
    assert ds.action.dtype == torch.int64 and ds.reward.dtype == torch.float32


def test_from_arrays_keeps_given_next_observations_and_dict_observations():
    M = 4
    obs = {"image": np.zeros((M, 2, 2, 3), np.uint8), "direction": np.arange(M)}
    nxt = {"image": np.ones((M, 2, 2, 3), np.uint8), "direction": np.arange(M) + 1}
    ds = TrajectoryDataset.from_arrays(observations=obs, actions=np.zeros((M, 2), np.float32), rewards=np.zeros(M),
                                       terminals=[0, 1, 0, 0], next_observations=nxt)
    assert ds.num_episodes == 2 and ds.action.dtype == torch.float32
    assert torch.equal(ds.next_obs["direction"], torch.arange(1, M + 1))


@pytest.mark.parametrize("kwargs, message", [
    ({"actions": np.zeros(4)}, "field 'actions' has 4 rows, expected 5"),
    ({"terminals": np.zeros(6)}, "field 'terminals' has 6 rows, expected 5"),
    ({"rewards": np.array([0, 0, np.nan, 0, 0], np.float32)}, "field 'reward' holds NaN or Inf"),
    ({"observations": np.full((5, 2), np.inf, np.float32)}, "field 'obs' holds NaN or Inf"),
    ({"rewards": np.zeros(0)}, "field 'rewards' must be a non-empty 1-d array"),
])
def test_from_arrays_refuses_bad_arrays_naming_the_field(kwargs, message):
    arrays = dict(observations=np.zeros((5, 2), np.float32), actions=np.zeros(5, np.int64), rewards=np.zeros(5, np.float32),
                  terminals=np.zeros(5, bool))
    arrays.update(kwargs)
    with pytest.raises(DatasetError, match=message):
        TrajectoryDataset.from_arrays(source="my.npz", **arrays)
