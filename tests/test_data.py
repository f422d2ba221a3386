"""The trajectory-data layer: dataset invariants, the batched collector, samplers and safe files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from toy_envs import ChainEnv, PointEnv

from algorithms.ppo import PPO
from rlcore.data import (DatasetError, TrajectoryDataset, UniformSampler, WeightedSampler, collect, load_dataset,
                         random_policy, save_dataset)


def _always_right(obs: torch.Tensor) -> torch.Tensor:
    return torch.ones(obs.shape[0], dtype=torch.long, device=obs.device)


def test_collect_episodes_match_manual_stepping():
    env = ChainEnv(num_envs=3, length=5)
    ds = collect(env, _always_right, n_episodes=6, seed=0)
    ds.validate()
    assert ds.num_episodes == 6 and len(ds) == 6 * 4
    assert ds.episode_length.tolist() == [4] * 6
    assert ds.episode_return.tolist() == [1.0] * 6
    assert ds.episode_success.tolist() == [True] * 6
    # the last transition of each episode ends at the goal: next_obs is the final obs, not the reset one
    ends = ds.done.nonzero().squeeze(1)
    assert ds.terminated[ends].all() and not ds.truncated.any()
    assert torch.equal(ds.next_obs[ends].argmax(-1), torch.full((6,), 4))
    assert torch.equal(ds.obs[ds.episode_start].argmax(-1), torch.zeros(6, dtype=torch.long))
    # within an episode next_obs of step t is obs of step t+1
    inner = (~ds.done).nonzero().squeeze(1)
    assert torch.equal(ds.next_obs[inner], ds.obs[inner + 1])


def test_collect_n_episodes_takes_first_episodes_of_each_env():
    """Each env contributes its first episodes (a quota per env, not the first K to finish), so
    short episodes are not over-represented."""
    env = ChainEnv(num_envs=4, length=6, max_steps=30)
    ds = collect(env, random_policy(env.single_action_space, 4, env.device, torch.Generator().manual_seed(1)),
                 n_episodes=10, seed=0)
    ds.validate()
    # the same actions stepped by hand: each env's episode lengths in order
    act = random_policy(env.single_action_space, 4, env.device, torch.Generator().manual_seed(1))
    obs, _ = env.reset(seed=0)
    lengths: list[list[int]] = [[] for _ in range(4)]
    running = torch.zeros(4, dtype=torch.long)
    for _ in range(300):
        obs, _, terminated, truncated, _ = env.step(act(obs))
        running += 1
        for i in (terminated | truncated).nonzero().squeeze(1).tolist():
            lengths[i].append(int(running[i]))
            running[i] = 0
    expected = lengths[0][:3] + lengths[1][:3] + lengths[2][:2] + lengths[3][:2]
    assert ds.episode_length.tolist() == expected
    assert ds.num_episodes == 10 and int(ds.done.sum()) == 10
    assert not ds.episode_cut.any() and ds.num_complete_episodes == 10  # only whole episodes are kept


def test_collect_n_steps_marks_budget_cut_as_truncated():
    env = ChainEnv(num_envs=4, length=50, max_steps=100)
    ds = collect(env, _always_right, n_steps=38, seed=0)  # 10 batched steps: no episode finishes
    ds.validate()
    assert len(ds) == 40 and ds.num_episodes == 4
    assert ds.truncated.sum() == 4 and not ds.terminated.any()
    assert ds.episode_success.tolist() == [False] * 4
    assert ds.episode_cut.tolist() == [True] * 4 and ds.num_complete_episodes == 0


def test_collect_rejects_bad_budget():
    env = ChainEnv(num_envs=2)
    with pytest.raises(ValueError, match="exactly one"):
        collect(env, _always_right, n_episodes=2, n_steps=4)
    with pytest.raises(ValueError, match="n_episodes must be a positive integer"):
        collect(env, _always_right, n_episodes=0)


def test_collect_with_native_learner_records_log_probs():
    env = ChainEnv(num_envs=4)
    model = PPO(env, n_steps=8, seed=0)
    ds = collect(env, model, n_episodes=4, seed=0)
    ds.validate()
    assert ds.log_prob is not None and ds.log_prob.shape == (len(ds),)
    with torch.no_grad():
        expected, _, _ = model.policy.evaluate(ds.obs, ds.action)
    torch.testing.assert_close(ds.log_prob, expected, atol=1e-5, rtol=1e-5)


def test_collect_with_sb3_model():
    from stable_baselines3 import PPO as SB3PPO

    from rlcore.adapters.sb3 import SB3VecEnv

    env = ChainEnv(num_envs=2)
    model = SB3PPO("MlpPolicy", SB3VecEnv(ChainEnv(num_envs=2)), n_steps=16, batch_size=32, seed=0)
    ds = collect(env, model, n_episodes=4, seed=0)
    ds.validate()
    assert ds.num_episodes == 4 and ds.log_prob is None
    assert ds.action.dtype == torch.int64


def test_ppo_rollout_as_dataset_keeps_log_probs():
    env = ChainEnv(num_envs=3)
    model = PPO(env, n_steps=16, seed=0)
    model.learn(48)
    ds = model.storage.dataset()
    ds.validate()
    assert len(ds) == 48
    # env-major: rows 0..15 are env 0's steps
    torch.testing.assert_close(ds.log_prob[:16], model.storage.log_probs[:, 0])
    torch.testing.assert_close(ds.reward[16:32], model.storage.rewards[:, 1])
    assert model.storage.transitions().log_prob is model.storage.log_probs


def test_save_load_round_trip_dict_obs_and_state(tmp_path):
    import envs.minigrid as mg

    env = mg.make("MiniGrid-DoorKey-5x5-v0", num_envs=4, device=torch.device("cpu"), seed=0)
    gen = torch.Generator().manual_seed(0)
    ds = collect(env, random_policy(env.single_action_space, 4, env.device, gen), n_steps=64, seed=3, record_state=True)
    path = save_dataset(ds, tmp_path / "d.safetensors")
    back = load_dataset(path)
    for name in ("action", "reward", "terminated", "truncated", "episode_id", "episode_start", "episode_return",
                 "episode_length", "episode_success"):
        assert torch.equal(getattr(back, name), getattr(ds, name)), name
    for key in ds.obs:
        assert torch.equal(back.obs[key], ds.obs[key]) and torch.equal(back.next_obs[key], ds.next_obs[key])
    for key in ds.state:
        assert torch.equal(back.state[key], ds.state[key]) and torch.equal(back.next_state[key], ds.next_state[key])
    assert back.metadata["env_id"] == "MiniGrid-DoorKey-5x5-v0" and back.metadata["seed"] == 3
    assert not (tmp_path / "d.safetensors.tmp").exists()


def _tiny(tmp_path) -> TrajectoryDataset:
    return collect(ChainEnv(num_envs=2), _always_right, n_episodes=2, seed=0)


def _rewrite(path, tensors=None, header=None):
    from safetensors.torch import load_file, safe_open, save_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    data = load_file(str(path))
    if tensors:
        data.update(tensors)
    head = json.loads(meta["rlreward"])
    if header:
        header(head)
    save_file(data, str(path), metadata={"rlreward": json.dumps(head)})


@pytest.mark.parametrize("tamper, field", [
    (lambda p: _rewrite(p, {"terminated": torch.zeros(8)}), "terminated"),
    (lambda p: _rewrite(p, {"reward": torch.full((8,), math.nan)}), "reward"),
    (lambda p: _rewrite(p, {"next_obs": torch.full((8, 5), math.inf)}), "next_obs"),
    (lambda p: _rewrite(p, {"episode_return": torch.tensor([5.0, 1.0])}), "episode_return"),
    (lambda p: _rewrite(p, {"action": torch.full((8,), 7, dtype=torch.int64)}), "action"),
    (lambda p: _rewrite(p, {"episode_id": torch.tensor([0, 0, 1, 1, 1, 1, 0, 0])}), "episode_id"),
    (lambda p: _rewrite(p, {"extra": torch.zeros(3)}), "extra"),
    (lambda p: _rewrite(p, header=lambda h: h["fields"].pop("truncated")), "truncated"),
])
def test_load_names_the_bad_field(tmp_path, tamper, field):
    path = save_dataset(_tiny(tmp_path), tmp_path / "d.safetensors")
    tamper(path)
    with pytest.raises(DatasetError, match=rf"{path}.*'{field}"):
        load_dataset(path)


def test_load_refuses_non_dataset_files(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(DatasetError, match="junk.safetensors"):
        load_dataset(junk)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing.safetensors")
    path = save_dataset(_tiny(tmp_path), tmp_path / "d.safetensors")
    _rewrite(path, header=lambda h: h.update(format="other/9"))
    with pytest.raises(DatasetError, match="format 'other/9'"):
        load_dataset(path)


def test_weighted_sampler_matches_weights():
    weights = torch.tensor([1.0, 2.0, 3.0, 0.0, 4.0])
    sampler = WeightedSampler(weights)
    gen = torch.Generator().manual_seed(0)
    idx = sampler.sample(200_000, gen)
    freq = torch.bincount(idx, minlength=5).double() / idx.numel()
    torch.testing.assert_close(freq, (weights / weights.sum()).double(), atol=4e-3, rtol=0)
    assert freq[3] == 0
    with pytest.raises(ValueError, match="non-negative"):
        WeightedSampler(torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="sum to zero"):
        WeightedSampler(torch.zeros(3))


def test_uniform_sampler_is_seeded_and_in_range():
    s = UniformSampler(7)
    a = s.sample(1000, torch.Generator().manual_seed(3))
    b = s.sample(1000, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and int(a.min()) == 0 and int(a.max()) == 6


def test_dataset_sample_and_select_episodes():
    ds = collect(PointEnv(num_envs=3), lambda obs: torch.zeros(obs.shape[0], 1), n_episodes=6, seed=0)
    ds.validate()
    batch = ds.sample(32, generator=torch.Generator().manual_seed(0))
    assert batch.action.shape == (32, 1) and batch.obs.shape[0] == 32
    sub = ds.select_episodes(torch.tensor([1, 4]))
    sub.validate()
    assert sub.num_episodes == 2 and len(sub) == int(ds.episode_length[1] + ds.episode_length[4])
    np.testing.assert_allclose(sub.episode_return.numpy(), ds.episode_return[[1, 4]].numpy())
