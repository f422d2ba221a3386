"""Behaviour cloning: learns a demonstrator's actions (discrete and continuous), save/load, and the
training app's offline path (same run dir, resume and errors as online learners)."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from toy_envs import ChainEnv, PointEnv

from algorithms.bc import BC
from rlcore.checkpoint import CheckpointError
from rlcore.data import DatasetError, collect, random_policy, save_dataset
from rlcore.evaluation import evaluate_policy
from rlcore.train import ConfigError, train


def _right(obs: torch.Tensor) -> torch.Tensor:
    return torch.ones(obs.shape[0], dtype=torch.long)


def _toward_one(obs: torch.Tensor) -> torch.Tensor:
    """PointEnv expert: step towards x = 1 (obs[:, 0] is the position), clipped to [-1, 1]."""
    return (1.0 - obs[:, :1]).clamp(-1.0, 1.0)


def test_bc_clones_discrete_expert():
    env = ChainEnv(num_envs=4, length=6)
    demos = collect(env, _right, n_episodes=8, seed=0)
    before = evaluate_policy(lambda o: BC(env, seed=0).act(o), ChainEnv(num_envs=16, length=6), seed=1)
    model = BC(env, seed=0, batch_size=64, learning_rate=3e-3, log_every=100).fit(demos, 300)
    after = evaluate_policy(lambda o: model.act(o), ChainEnv(num_envs=16, length=6), seed=1)
    assert model.num_timesteps == 300
    assert after["success_rate"] == 1.0 and after["length_mean"] == 5.0
    assert before["success_rate"] < 0.5


def test_bc_clones_continuous_expert():
    env = PointEnv(num_envs=4)
    demos = collect(env, _toward_one, n_episodes=8, seed=0)
    model = BC(env, seed=0, batch_size=64, learning_rate=3e-3, log_every=200).fit(demos, 600)
    obs = demos.obs[:64]
    err = (model.act(obs, deterministic=True) - _toward_one(obs)).abs().mean()
    assert float(err) < 0.1


def test_bc_metrics_and_callback_stop():
    env = ChainEnv(num_envs=2)
    demos = collect(env, _right, n_episodes=2, seed=0)
    seen = []
    BC(env, log_every=10).fit(demos, 100, callback=lambda m, model: seen.append(m) or len(seen) < 3)
    assert len(seen) == 3 and seen[-1]["time/gradient_steps"] == 30
    assert {"loss/bc", "loss/neg_log_likelihood", "loss/entropy", "train/accuracy"} <= set(seen[0])


def test_bc_save_load_round_trip(tmp_path):
    env = ChainEnv(num_envs=3)
    model = BC(env, seed=2, log_every=20).fit(collect(env, _right, n_episodes=3, seed=0), 40)
    model.save(tmp_path / "bc.pt")
    loaded = BC.load(tmp_path / "bc.pt")
    obs = torch.eye(5)
    assert torch.equal(loaded.act(obs, deterministic=True), model.act(obs, deterministic=True))
    assert loaded.num_timesteps == 40
    actions, _ = loaded.predict(obs.numpy(), deterministic=True)
    assert actions.tolist() == model.act(obs, deterministic=True).tolist()
    with pytest.raises(CheckpointError, match="format"):
        from algorithms.ppo import PPO

        PPO(env).save(tmp_path / "ppo.pt")
        BC.load(tmp_path / "ppo.pt")


def test_bc_refuses_mismatched_dataset():
    demos = collect(ChainEnv(num_envs=2, length=5), _right, n_episodes=2, seed=0)
    with pytest.raises(DatasetError, match="observation_space"):
        BC(ChainEnv(num_envs=2, length=7)).fit(demos, 10)


def _mixed_chain_data():
    """ChainEnv(length 8, 12 steps): 40 episodes of a left-leaning policy (right with p 0.3, which
    almost never reaches the end) and 2 of the expert."""
    from rlcore.data import TrajectoryDataset

    gen = torch.Generator().manual_seed(0)
    poor = collect(ChainEnv(num_envs=8, length=8, max_steps=12), lambda o: (torch.rand(o.shape[0], generator=gen) < 0.3).long(),
                   n_episodes=40, seed=0)
    expert = collect(ChainEnv(num_envs=2, length=8, max_steps=12), _right, n_episodes=2, seed=1)
    arrays = {}
    for name in ("obs", "action", "reward", "terminated", "truncated", "next_obs"):
        arrays[name] = torch.cat([getattr(poor, name), getattr(expert, name)])
    return TrajectoryDataset.from_arrays(observations=arrays["obs"], actions=arrays["action"], rewards=arrays["reward"],
                                         terminals=arrays["terminated"], timeouts=arrays["truncated"],
                                         next_observations=arrays["next_obs"], metadata=dict(poor.metadata))


def test_bc_with_return_weighting_clones_the_few_good_trajectories():
    """Hong et al. 2023 on a toy mixture: uniform BC copies the poor majority, RW copies the expert."""
    from rlcore.data import make_sampler

    data = _mixed_chain_data()
    assert float(data.episode_return.mean()) < 0.2
    env = ChainEnv(num_envs=4, length=8, max_steps=12)
    results = {}
    for mode in ("uniform", "rw"):
        model = BC(env, seed=0, batch_size=64, learning_rate=3e-3, log_every=100)
        model.fit(data, 300, sampler=make_sampler(data, mode, 0.1))
        results[mode] = evaluate_policy(lambda o, m=model: m.act(o, deterministic=True),
                                        ChainEnv(num_envs=16, length=8, max_steps=12), seed=1)["success_rate"]
    assert results["rw"] == 1.0
    assert results["uniform"] < 0.5


# ------------------------------------------------------------------------------ the training app
FAST = ["env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=8", "eval.num_episodes=4", "progress_bar=false", "algo=bc",
        "algo.params.log_every=50", "algo.params.batch_size=32"]


@pytest.fixture
def empty_dataset(tmp_path):
    import envs.minigrid as mg

    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=8, device=torch.device("cpu"), seed=0)
    gen = torch.Generator().manual_seed(0)
    return save_dataset(collect(env, random_policy(env.single_action_space, 8, env.device, gen), n_steps=256, seed=0),
                        tmp_path / "empty.safetensors")


def test_app_trains_offline_learner_with_the_same_run_dir(compose_cfg, tmp_path, empty_dataset):
    run = tmp_path / "run"
    cfg = compose_cfg(*FAST, f"dataset.path={empty_dataset}", "fit_steps=200", "eval.every_fit_steps=100",
                      "checkpoint.every_fit_steps=100")
    summary = train(cfg, run)
    assert summary["gradient_steps"] == 200 and summary["total_timesteps"] == 0
    assert summary["dataset"] == str(empty_dataset) and summary["algo"] == "bc"
    assert summary["normalized_score"] is None  # the dataset stores no reference returns
    assert json.loads((run / "summary.json").read_text())["gradient_steps"] == 200
    for name in ("config.yaml", "final_model.pt", "learning_curve.png", "progress.csv"):
        assert (run / name).exists(), name
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt_*.pt")) == ["ckpt_100.pt", "ckpt_200.pt"]
    rows = list(csv.DictReader(open(run / "progress.csv")))
    assert [int(r["time/timesteps"]) for r in rows] == [50, 100, 150, 200]
    assert rows[1]["eval/success_rate"] != "" and rows[0]["eval/success_rate"] == ""
    assert BC.load(run / "final_model.pt").num_timesteps == 200


def test_app_resumes_offline_learner(compose_cfg, tmp_path, empty_dataset):
    run = tmp_path / "run"
    common = [*FAST, f"dataset.path={empty_dataset}", "checkpoint.every_fit_steps=100", "logger=minimal"]
    train(compose_cfg(*common, "fit_steps=100"), run)
    summary = train(compose_cfg(*common, "fit_steps=200", "resume=true"), run)
    assert summary["resumed_from"].endswith("ckpt_100.pt") and summary["gradient_steps"] == 200
    steps = [int(r["time/timesteps"]) for r in csv.DictReader(open(run / "progress.csv"))]
    assert steps == [50, 100, 150, 200]


def test_app_offline_errors_name_the_key_or_file(compose_cfg, tmp_path, empty_dataset):
    with pytest.raises(ConfigError, match="dataset.path"):
        train(compose_cfg(*FAST, "fit_steps=10"), tmp_path / "a")
    with pytest.raises(DatasetError, match="empty.safetensors.*MiniGrid-Empty-5x5-v0"):
        train(compose_cfg(*FAST, "env.id=MiniGrid-Empty-6x6-v0", f"dataset.path={empty_dataset}", "fit_steps=10"),
              tmp_path / "b")
    with pytest.raises(ValueError, match="reward=none"):
        train(compose_cfg(*FAST, f"dataset.path={empty_dataset}", "reward=counts", "fit_steps=10"), tmp_path / "c")
    with pytest.raises(ConfigError, match="fit_steps"):
        train(compose_cfg(*FAST, f"dataset.path={empty_dataset}", "fit_steps=0"), tmp_path / "d")
    from rlcore.data import load_dataset

    cut_only = load_dataset(empty_dataset)
    cut_only = cut_only.select_episodes(cut_only.episode_cut.nonzero().squeeze(1))
    cut_path = save_dataset(cut_only, tmp_path / "cut_only.safetensors")
    with pytest.raises(DatasetError, match="cut_only.safetensors holds no complete episode: all 8 were cut"):
        train(compose_cfg(*FAST, f"dataset.path={cut_path}", "fit_steps=10"), tmp_path / "g")
    with pytest.raises(ConfigError, match="dataset.sampler must be one of uniform, rw, aw, topk, got 'best'"):
        train(compose_cfg(*FAST, f"dataset.path={empty_dataset}", "fit_steps=10", "dataset.sampler=best"), tmp_path / "e")
    with pytest.raises(ConfigError, match="dataset.alpha must be a finite number > 0, got -0.5"):
        train(compose_cfg(*FAST, f"dataset.path={empty_dataset}", "fit_steps=10", "dataset.sampler=rw",
                          "dataset.alpha=-0.5"), tmp_path / "f")


def test_app_offline_learner_with_a_weighted_sampler(compose_cfg, tmp_path, empty_dataset):
    from rlcore.data import REF_EXPERT, REF_RANDOM, load_dataset

    data = load_dataset(empty_dataset)
    data.metadata.update({REF_RANDOM: 0.0, REF_EXPERT: 0.5})
    path = save_dataset(data, tmp_path / "with_refs.safetensors")
    cfg = compose_cfg(*FAST, f"dataset.path={path}", "fit_steps=100", "eval.every_fit_steps=100",
                      "checkpoint.every_fit_steps=100", "logger=minimal", "dataset.sampler=aw", "dataset.alpha=0.2")
    summary = train(cfg, tmp_path / "run")
    assert summary["gradient_steps"] == 100
    assert summary["sampler"] == {"sampler": "aw", "alpha": 0.2, "top_k_percent": 10.0, "baseline": "auto"}
    assert summary["normalized_score"] == pytest.approx(100 * summary["eval_return_mean"] / 0.5)


@pytest.mark.slow
def test_bc_from_ppo_expert_solves_doorkey5x5(compose_cfg, tmp_path):
    """The README example: 200 episodes of a trained PPO policy -> BC reaches >= 0.9 success."""
    from rlcore.collect import collect_dataset

    expert = train(compose_cfg("experiment=demo", "progress_bar=false", "logger=minimal"), tmp_path / "ppo")
    assert expert["eval_success_rate"] >= 0.9
    data = collect_dataset(compose_cfg("env.id=MiniGrid-DoorKey-5x5-v0", f"policy.path={expert['final_model']}",
                                       "n_episodes=200", f"out={tmp_path / 'demos.safetensors'}", "progress_bar=false",
                                       config_name="collect"))
    assert data["episodes"] == 200
    bc = train(compose_cfg("algo=bc", "env.id=MiniGrid-DoorKey-5x5-v0", f"dataset.path={data['out']}",
                           "progress_bar=false", "logger=minimal"), tmp_path / "bc")
    assert bc["eval_success_rate"] >= 0.9
