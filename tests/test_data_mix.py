"""Mixed datasets by trajectory fractions (Hong et al. 2023's mixtures) and D4RL normalised scores."""

from __future__ import annotations

import pytest
import torch
from toy_envs import ChainEnv

from rlcore.data import (REF_EXPERT, REF_RANDOM, DatasetError, collect, concat_datasets, load_dataset, make_mixed,
                         normalized_score, save_dataset)


def _right(obs):
    return torch.ones(obs.shape[0], dtype=torch.long)


@pytest.fixture(scope="module")
def sources():
    gen = torch.Generator().manual_seed(0)
    poor = collect(ChainEnv(num_envs=8, length=6, max_steps=10), lambda o: (torch.rand(o.shape[0], generator=gen) < 0.3).long(),
                   n_episodes=200, seed=0, metadata={"source": "p_right=0.3"})
    expert = collect(ChainEnv(num_envs=4, length=6, max_steps=10), _right, n_episodes=40, seed=1,
                     metadata={"source": "expert"})
    return poor, expert


def test_concat_renumbers_episodes_and_keeps_them_whole(sources):
    poor, expert = sources
    both = concat_datasets([poor, expert])
    both.validate()
    assert both.num_episodes == poor.num_episodes + expert.num_episodes
    assert len(both) == len(poor) + len(expert)
    assert torch.equal(both.episode_return[poor.num_episodes:], expert.episode_return)
    assert torch.equal(both.obs[len(poor):], expert.obs)


def test_make_mixed_counts_fractions_of_trajectories(sources):
    poor, expert = sources
    mixed = make_mixed([poor, expert], [0.95, 0.05], n_episodes=100, seed=0)
    mixed.validate()
    assert mixed.num_episodes == 100
    # the expert's 5 episodes come last, each reaching the end in 5 steps
    is_expert = torch.zeros(mixed.num_episodes, dtype=torch.bool)
    is_expert[95:] = True
    assert bool((mixed.episode_return[is_expert] == 1).all()) and bool((mixed.episode_length[is_expert] == 5).all())
    assert mixed.metadata["source"]["episodes"] == [95, 5]
    assert mixed.metadata["source"]["mixture"] == ["p_right=0.3", "expert"]
    assert mixed.metadata[REF_EXPERT] == 1.0
    assert mixed.metadata[REF_RANDOM] == pytest.approx(float(poor.episode_return.mean()))
    # reproducible, and another seed draws other trajectories
    again = make_mixed([poor, expert], [0.95, 0.05], n_episodes=100, seed=0)
    assert torch.equal(again.obs, mixed.obs)
    other = make_mixed([poor, expert], [0.95, 0.05], n_episodes=100, seed=1)
    assert not torch.equal(other.action[: len(mixed)], mixed.action[: len(other)])


def test_make_mixed_default_size_and_one_trajectory_minimum(sources):
    poor, expert = sources
    mixed = make_mixed([poor, expert], [0.99, 0.01], seed=0)
    assert mixed.num_episodes == round(0.99 * 202) + max(1, round(0.01 * 202))  # 200 / 0.99 = 202 episodes
    assert mixed.metadata["source"]["episodes"][1] == 2


@pytest.mark.parametrize("fractions, message", [
    ([0.5, 0.4], "fractions must be non-negative and sum to 1"),
    ([1.2, -0.2], "fractions must be non-negative and sum to 1"),
    ([1.0], "2 datasets and 1 fractions"),
])
def test_make_mixed_refuses_bad_fractions(sources, fractions, message):
    with pytest.raises(ValueError, match=message):
        make_mixed(list(sources), fractions)


def test_make_mixed_refuses_a_mixture_a_source_cannot_fill(sources):
    poor, expert = sources
    with pytest.raises(DatasetError, match="dataset 1 holds 40 episodes, the mixture needs 50"):
        make_mixed([poor, expert], [0.5, 0.5], n_episodes=100)


def test_mixture_round_trips_through_a_file(sources, tmp_path):
    mixed = make_mixed(list(sources), [0.9, 0.1], n_episodes=50, seed=3)
    loaded = load_dataset(save_dataset(mixed, tmp_path / "mixed.safetensors"))
    assert loaded.metadata[REF_EXPERT] == mixed.metadata[REF_EXPERT]
    assert torch.equal(loaded.obs, mixed.obs) and torch.equal(loaded.episode_id, mixed.episode_id)


def test_normalized_score_is_d4rls_formula():
    meta = {REF_RANDOM: 10.0, REF_EXPERT: 110.0}
    assert normalized_score([60.0, 60.0], meta) == pytest.approx(50.0)
    assert normalized_score(torch.tensor([10.0]), meta) == pytest.approx(0.0)
    assert normalized_score([130.0], 10.0, 110.0) == pytest.approx(120.0)
    with pytest.raises(DatasetError, match="ref_expert_return"):
        normalized_score([1.0], {REF_RANDOM: 0.0})
    with pytest.raises(DatasetError, match="must exceed the random one"):
        normalized_score([1.0], 5.0, 5.0)
