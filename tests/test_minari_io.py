"""Minari round trip: the library's datasets written as local Minari datasets read back equal, Minari
datasets made by Minari's own tools load, and bad input gets one clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("minari")
pytest.importorskip("h5py")

import envs.minigrid as mg  # noqa: E402
from rlcore.data import DatasetError, TrajectoryDataset, collect, make_mixed, random_policy  # noqa: E402
from rlcore.data.minari_io import load_minari, save_minari  # noqa: E402

TASK = "MiniGrid-DoorKey-5x5-v0"


@pytest.fixture(scope="module")
def minigrid_data():
    env = mg.make(TASK, num_envs=8, seed=0)
    gen = torch.Generator().manual_seed(0)
    return collect(env, random_policy(env.single_action_space, 8, env.device, gen), n_steps=400, seed=0,
                   record_state=True, metadata={"source": "random"})


def _assert_equal(a: TrajectoryDataset, b: TrajectoryDataset) -> None:
    for name in ("action", "reward", "terminated", "truncated", "episode_id", "episode_start", "episode_length"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.allclose(a.episode_return, b.episode_return)
    for name in ("obs", "next_obs", "state", "next_state"):
        x, y = getattr(a, name), getattr(b, name)
        if x is None:
            assert y is None, name
            continue
        assert set(x) == set(y), name
        for k in x:
            assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]), f"{name}/{k}"
    assert torch.equal(a.episode_cut, b.episode_cut)
    assert (a.episode_success is None) == (b.episode_success is None)
    if a.episode_success is not None:
        assert torch.equal(a.episode_success, b.episode_success)


def test_minigrid_dataset_round_trips_losslessly(minigrid_data, tmp_path):
    data = minigrid_data
    assert isinstance(data.obs, dict) and "mission" in data.obs and data.obs["image"].dtype == torch.uint8
    assert bool(data.truncated[-1]) and bool(data.episode_cut[-1])  # the collection budget cut the last episodes
    path = save_minari(data, "rlreward/doorkey5x5/random-v0", root=tmp_path)
    assert (path / "data" / "main_data.hdf5").exists()
    back = load_minari("rlreward/doorkey5x5/random-v0", root=tmp_path)
    _assert_equal(data, back)
    assert back.metadata == data.metadata  # spaces with the symbolic-grid vocabulary, source, ...


def test_written_dataset_is_a_real_minari_dataset(minigrid_data, tmp_path, monkeypatch):
    import minari

    mixed = make_mixed([minigrid_data, minigrid_data], [0.5, 0.5], n_episodes=10, seed=0, ref_random_return=0.0,
                       ref_expert_return=0.9)
    save_minari(mixed, "rlreward/doorkey5x5/mixed-v0", root=tmp_path, author="tests")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ds = minari.load_dataset("rlreward/doorkey5x5/mixed-v0")
    assert ds.total_episodes == mixed.num_episodes and ds.total_steps == len(mixed)
    first = next(iter(ds.iterate_episodes()))
    assert first.observations["image"].dtype == np.uint8  # stored raw, not JPEG
    assert np.array_equal(first.observations["image"][0], mixed.obs["image"][0].numpy())
    assert minari.get_normalized_score(ds, np.array([0.45]))[0] == pytest.approx(0.5)
    # and the library reads it back from the environment variable's root
    assert load_minari("rlreward/doorkey5x5/mixed-v0").num_episodes == mixed.num_episodes


def test_reads_a_dataset_made_by_minaris_own_tools_with_text_missions(tmp_path):
    """A Minari dataset as a user would bring it: Farama-style text missions, neither flag on the last
    step of an unfinished episode."""
    import gymnasium as gym
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    obs_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8), "direction": gym.spaces.Discrete(4),
                                 "mission": gym.spaces.Text(64)})
    (tmp_path / "user-v0").mkdir()
    storage = MinariStorage.new(tmp_path / "user-v0" / "data", observation_space=obs_space, action_space=gym.spaces.Discrete(7),
                                jpeg_encoding=False)
    storage.update_metadata({"dataset_id": "user-v0", "minari_version": __import__("minari").__version__})
    rng = np.random.default_rng(0)
    mission = "use the key to open the door and then get to the goal"
    lengths = [4, 3]
    for e, T in enumerate(lengths):
        storage.update_episodes([EpisodeBuffer(
            id=e, observations={"image": rng.integers(0, 9, (T + 1, 7, 7, 3)).astype(np.uint8),
                                "direction": rng.integers(0, 4, T + 1), "mission": [mission] * (T + 1)},
            actions=rng.integers(0, 7, T), rewards=np.zeros(T, np.float32), terminations=np.array([False] * (T - 1) + [e == 0]),
            truncations=np.zeros(T, bool), infos={})])
    env = mg.make(TASK, num_envs=1)
    with pytest.raises(DatasetError, match="text missions; pass missions=env.missions"):
        load_minari("user-v0", root=tmp_path)
    data = load_minari("user-v0", root=tmp_path, missions=env.missions)
    assert data.episode_length.tolist() == lengths
    assert data.episode_cut.tolist() == [False, True]  # the second episode ends with neither flag
    assert data.terminated.nonzero().squeeze(1).tolist() == [3] and data.truncated.nonzero().squeeze(1).tolist() == [6]
    assert data.obs["mission"].tolist() == [0] * 7
    assert data.metadata["observation_space"]["spaces"]["mission"] == {"type": "Discrete", "n": len(env.missions), "start": 0}


def test_save_refuses_what_minari_cannot_keep_and_never_half_writes(minigrid_data, tmp_path):
    save_minari(minigrid_data, "kept-v0", root=tmp_path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_minari(minigrid_data, "kept-v0", root=tmp_path)
    broken = TrajectoryDataset.from_arrays(observations=np.arange(6, dtype=np.float32)[:, None], actions=np.zeros(6, np.int64),
                                           rewards=np.zeros(6, np.float32), terminals=[0, 0, 1, 0, 0, 1],
                                           next_observations=np.full((6, 1), 7.0, np.float32))
    with pytest.raises(DatasetError, match="field 'next_obs' differs from the next row"):
        save_minari(broken, "kept-v0", root=tmp_path, overwrite=True)
    # the failed write left the old dataset as it was and no partial directory behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept-v0"]
    assert load_minari("kept-v0", root=tmp_path).num_episodes == minigrid_data.num_episodes
    with pytest.raises(ValueError, match="malformed"):
        save_minari(minigrid_data, "no spaces allowed-v0!", root=tmp_path)


def test_load_refuses_missing_and_corrupt_datasets_naming_them(minigrid_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_minari("absent-v0", root=tmp_path)
    path = save_minari(minigrid_data, "corrupt-v0", root=tmp_path)
    main = path / "data" / "main_data.hdf5"
    blob = main.read_bytes()
    main.write_bytes(blob[: len(blob) // 3])
    before = main.read_bytes()
    with pytest.raises(DatasetError, match="corrupt-v0.*cannot be read"):
        load_minari("corrupt-v0", root=tmp_path)
    assert main.read_bytes() == before  # a failed load changes nothing on disk
