"""The training app with every offline learner: a dataset file in, evaluation every K gradient steps,
CSV and TensorBoard logs, summary.json with the normalised score, save/load, and a resume after SIGKILL."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rlcore.data import REF_EXPERT, REF_RANDOM, collect, random_policy, save_dataset
from rlcore.train import train

ROOT = Path(__file__).resolve().parents[1]
TASK = "MiniGrid-Empty-5x5-v0"
#: algo name -> learner class path (the offline learners of the app)
OFFLINE = {"bc": "algorithms.bc.BC", "iql": "algorithms.iql.IQL", "cql": "algorithms.cql.CQL"}
FAST = {"bc": ["algo.params.batch_size=32", "algo.params.log_every=50"],
        "iql": ["algo.params.batch_size=32", "algo.params.log_every=50", "algo.policy.hidden_sizes=[32,32]"],
        "cql": ["algo.params.batch_size=32", "algo.params.log_every=50", "algo.policy.hidden_sizes=[32,32]"],
        "td3bc": ["algo.params.batch_size=32", "algo.params.log_every=50", "algo.policy.hidden_sizes=[32,32]"]}
#: td3bc is continuous only, so it runs on a continuous task (test_app_trains_on_a_continuous_dataset), not on TASK
CONTINUOUS_TASK = "Pendulum-v1"
CONTINUOUS = {"td3bc": "algorithms.td3bc.TD3BC", "cql": "algorithms.cql.CQL"}


@pytest.fixture(scope="module")
def dataset_file(tmp_path_factory):
    import envs.minigrid as mg

    env = mg.make(TASK, num_envs=8, seed=0)
    data = collect(env, random_policy(env.single_action_space, 8, env.device, torch.Generator().manual_seed(0)),
                   n_steps=256, seed=0)
    data.metadata.update({REF_RANDOM: 0.0, REF_EXPERT: 0.9})
    return save_dataset(data, tmp_path_factory.mktemp("data") / "empty5.safetensors")


def _common(algo: str, path: Path) -> list[str]:
    return [f"env.id={TASK}", "env.num_envs=4", "eval.num_episodes=4", "progress_bar=false", f"algo={algo}",
            f"dataset.path={path}", *FAST[algo]]


@pytest.mark.parametrize("algo", sorted(OFFLINE))
def test_app_trains_every_offline_learner_with_a_weighted_sampler(compose_cfg, tmp_path, dataset_file, algo):
    import importlib

    run = tmp_path / "run"
    cfg = compose_cfg(*_common(algo, dataset_file), "fit_steps=200", "eval.every_fit_steps=100",
                      "checkpoint.every_fit_steps=100", "dataset.sampler=rw")
    summary = train(cfg, run)
    assert summary["algo"] == algo and summary["gradient_steps"] == 200
    assert summary["sampler"]["sampler"] == "rw"
    assert summary["normalized_score"] == pytest.approx(100 * summary["eval_return_mean"] / 0.9)
    rows = list(csv.DictReader(open(run / "progress.csv")))
    assert [int(r["time/timesteps"]) for r in rows] == [50, 100, 150, 200]
    assert rows[1]["eval/success_rate"] != "" and rows[0]["eval/success_rate"] == ""
    assert any(p.name.startswith("events.") for p in (run / "tb").rglob("*"))
    module, cls = OFFLINE[algo].rsplit(".", 1)
    model = getattr(importlib.import_module(module), cls).load(run / "final_model.pt")
    assert model.num_timesteps == 200
    assert json.loads((run / "summary.json").read_text())["gradient_steps"] == 200


@pytest.fixture(scope="module")
def continuous_dataset_file(tmp_path_factory):
    """Random actions on Pendulum-v1 (gymnasium adapter; actions in [-2, 2], 200-step episodes)."""
    from rlcore.make_env import make_env

    env = make_env({"id": CONTINUOUS_TASK, "num_envs": 4, "backend": "gymnasium", "vectorization": "sync"}, "cpu", seed=0)
    data = collect(env, random_policy(env.single_action_space, 4, env.device, torch.Generator().manual_seed(0)),
                   n_episodes=4, seed=0)  # whole episodes: the app refuses a dataset with no complete one
    return save_dataset(data, tmp_path_factory.mktemp("data") / "pendulum.safetensors")


@pytest.mark.parametrize("algo", sorted(CONTINUOUS))
def test_app_trains_on_a_continuous_dataset(compose_cfg, tmp_path, continuous_dataset_file, algo):
    import importlib

    from rlcore.data import load_dataset

    run = tmp_path / "run"
    cfg = compose_cfg("env=gym", f"env.id={CONTINUOUS_TASK}", "env.num_envs=2", "eval.num_episodes=2", "progress_bar=false",
                      f"algo={algo}", f"dataset.path={continuous_dataset_file}", *FAST[algo], "fit_steps=100",
                      "eval.every_fit_steps=100", "checkpoint.every_fit_steps=100", "dataset.sampler=rw")
    summary = train(cfg, run)
    assert summary["algo"] == algo and summary["gradient_steps"] == 100 and summary["sampler"]["sampler"] == "rw"
    assert [int(r["time/timesteps"]) for r in csv.DictReader(open(run / "progress.csv"))] == [50, 100]
    module, cls = CONTINUOUS[algo].rsplit(".", 1)
    model = getattr(importlib.import_module(module), cls).load(run / "final_model.pt")
    assert model.num_timesteps == 100
    data = load_dataset(continuous_dataset_file)
    actions = model.act(data.obs[:64], deterministic=True)
    assert actions.shape == (64, 1) and float(actions.abs().max()) <= 2.0 and float(actions.abs().max()) > 0.0
    if algo == "td3bc":  # the dataset's observation statistics travel in the checkpoint
        assert torch.allclose(model.obs_norm.mean, data.obs.mean(0), atol=1e-5)
        assert torch.allclose(model.obs_norm.std, data.obs.std(0, unbiased=False) + 1e-3, atol=1e-5)


def test_app_refuses_td3bc_on_discrete_actions(compose_cfg, tmp_path, dataset_file):
    cfg = compose_cfg(*_common("td3bc", dataset_file), "fit_steps=10")
    with pytest.raises(ValueError, match=r"algo=td3bc needs a continuous \(Box\) action space"):
        train(cfg, tmp_path / "run")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_offline_run_resumes_after_sigkill(tmp_path, dataset_file):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "rlcore.train", *_common("iql", dataset_file), "fit_steps=600",
            "checkpoint.every_fit_steps=200", "eval.every_fit_steps=300", "logger=minimal", "num_threads=1",
            f"hydra.run.dir={run}"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while not (run / "checkpoints" / "ckpt_200.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint within 240 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "summary.json").exists()
    done = subprocess.run([*args, "resume=true"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["gradient_steps"] == 600 and summary["resumed_from"].endswith(".pt")
    steps = [int(r["time/timesteps"]) for r in csv.DictReader(open(run / "progress.csv"))]
    assert steps == sorted(set(steps)) and steps[-1] == 600  # nothing duplicated, nothing after the end
    assert not list(run.rglob("*.tmp*"))
