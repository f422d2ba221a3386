"""The Hydra training app: outputs, resume after a kill, config errors, CLI and multirun."""

import csv
import math
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rlcore.checkpoint import CheckpointError
from rlcore.train import ConfigError, train

ROOT = Path(__file__).resolve().parents[1]
FAST = [
    "env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=8", "algo.params.n_steps=16", "eval.num_episodes=4",
    "progress_bar=false",
]


def test_run_dir_holds_every_artifact(compose_cfg, tmp_path):
    cfg = compose_cfg(*FAST, "total_timesteps=1024", "eval.every_timesteps=512", "checkpoint.every_timesteps=512")
    summary = train(cfg, tmp_path)
    for key in ("total_timesteps", "wall_time_s", "fps", "eval_return_mean", "eval_success_rate"):
        assert key in summary
    assert summary["total_timesteps"] == 1024
    assert json.loads((tmp_path / "summary.json").read_text())["total_timesteps"] == 1024
    assert (tmp_path / "config.yaml").read_text().count("MiniGrid-Empty-5x5-v0") >= 1
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    assert (tmp_path / "final_model.pt").exists()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("ckpt_*.pt")) == ["ckpt_1024.pt", "ckpt_512.pt"]
    rows = list(csv.DictReader(open(tmp_path / "progress.csv")))
    assert [int(r["time/timesteps"]) for r in rows] == [128 * i for i in range(1, 9)]
    assert rows[3]["eval/success_rate"] != "" and rows[2]["eval/success_rate"] == ""


def test_resume_continues_from_last_checkpoint(compose_cfg, tmp_path):
    first = compose_cfg(*FAST, "total_timesteps=1024", "checkpoint.every_timesteps=512", "logger=minimal")
    train(first, tmp_path)
    # Simulate a run killed after its 1024-step checkpoint: extend the budget and resume.
    second = compose_cfg(*FAST, "total_timesteps=2048", "checkpoint.every_timesteps=512", "logger=minimal", "resume=true")
    summary = train(second, tmp_path)
    assert summary["resumed_from"].endswith("ckpt_1024.pt")
    assert summary["total_timesteps"] == 2048
    steps = [int(r["time/timesteps"]) for r in csv.DictReader(open(tmp_path / "progress.csv"))]
    assert steps == [128 * i for i in range(1, 17)]  # no duplicated or missing rows


def test_existing_run_dir_is_protected(compose_cfg, tmp_path):
    cfg = compose_cfg(*FAST, "total_timesteps=128", "logger=minimal")
    train(cfg, tmp_path)
    with pytest.raises(ConfigError, match="resume=true"):
        train(cfg, tmp_path)
    train(compose_cfg(*FAST, "total_timesteps=128", "logger=minimal", "overwrite=true"), tmp_path)


@pytest.mark.parametrize(
    "override, match",
    [
        ("env.id=MiniGrid-NoSuchTask-v0", "env.id='MiniGrid-NoSuchTask-v0'"),
        ("total_timesteps=0", "total_timesteps must be a positive integer"),
        ("env.num_envs=-2", "env.num_envs must be a positive integer"),
        ("algo.params.clip_range=-1", "algo.clip_range must be > 0"),
        ("+algo.params.learning_rat=0.1", "algo.params.learning_rat"),
        ("env.backend=magic", "env.backend must be"),
        ("device=cuda:7", "device='cuda:7'"),
    ],
)
def test_bad_config_values_are_named(compose_cfg, tmp_path, override, match):
    if override.startswith("device") and torch.cuda.device_count() > 7:
        pytest.skip("machine has that device")
    with pytest.raises(ValueError, match=match):
        train(compose_cfg(*FAST, override), tmp_path)
    assert not list(tmp_path.glob("checkpoints/*"))


def test_unknown_algo_or_reward_group_is_named(compose_cfg):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="algo/sac"):
        compose_cfg("algo=sac")
    with pytest.raises(MissingConfigException, match="reward/curiosity9"):
        compose_cfg("reward=curiosity9")


def test_corrupt_or_mismatched_checkpoint_on_resume(compose_cfg, tmp_path):
    train(compose_cfg(*FAST, "total_timesteps=256", "checkpoint.every_timesteps=128", "logger=minimal"), tmp_path)
    ckpt = tmp_path / "checkpoints" / "ckpt_256.pt"
    mismatched = compose_cfg(*FAST, "env.id=MiniGrid-DoorKey-5x5-v0", "total_timesteps=512", "logger=minimal", "resume=true")
    with pytest.raises(CheckpointError, match="ckpt_256.pt.*MiniGrid-Empty-5x5-v0"):
        train(mismatched, tmp_path)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    # a corrupt newest checkpoint: resume falls back to the newest valid one, warning about the bad one
    with pytest.warns(UserWarning, match="ckpt_256.pt.*corrupt"):
        summary = train(compose_cfg(*FAST, "total_timesteps=384", "logger=minimal", "resume=true"), tmp_path)
    assert summary["resumed_from"].endswith("ckpt_128.pt") and summary["total_timesteps"] == 384
    for p in (tmp_path / "checkpoints").glob("ckpt_*.pt"):
        p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="ckpt_384.pt.*corrupt"):
        train(compose_cfg(*FAST, "total_timesteps=512", "logger=minimal", "resume=true"), tmp_path)


def test_flipped_weight_bytes_are_refused(tmp_path):
    """A byte flipped inside the weights is caught by the checksum, not loaded silently."""
    import envs.minigrid as mg
    from algorithms.ppo import PPO
    from rlcore.checkpoint import load_checkpoint, save_checkpoint

    model = PPO(mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0), n_steps=8)
    path = save_checkpoint(tmp_path / "m.pt", model.state_dict())
    payload = torch.load(path, weights_only=True)
    weight = payload["policy"]["actor_out.weight"]
    weight.view(torch.uint8)[3] ^= 0x10
    torch.save(payload, path)  # the old checksum stays: the file is well-formed but its weights changed
    with pytest.raises(CheckpointError, match="m.pt is corrupt.*checksum"):
        load_checkpoint(path, "rlreward.ppo/1")
    assert not list(tmp_path.glob("*.tmp"))


def test_last_good_state_is_finite(tmp_path):
    """If the weights are already NaN, the hook saves nothing and names the newest finite checkpoint."""
    from algorithms.ppo import PPO
    from rlcore.learner import NonFiniteLossError, checkpoint_on_non_finite
    from toy_envs import ChainEnv

    model = PPO(ChainEnv(num_envs=2), n_steps=8)
    model.save(tmp_path / "ckpt_16.pt")
    with torch.no_grad():
        next(model.policy.parameters()).fill_(float("nan"))
    model.on_non_finite = checkpoint_on_non_finite(tmp_path / "last_good.pt")
    with pytest.raises(NonFiniteLossError, match="newest finite checkpoint is .*ckpt_16.pt"):
        model.fail_non_finite({"value": torch.tensor(float("nan"))})
    assert not (tmp_path / "last_good.pt").exists()


def _cli(args, cwd, **kw):
    # One torch thread: small nets run faster so, and a loaded machine does not stall the run.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "rlcore.train", *args, "num_threads=1"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_cli_killed_run_resumes_and_loses_at_most_one_interval(tmp_path):
    run_dir = tmp_path / "run"
    args = [*FAST, "logger=minimal", "total_timesteps=4096", "checkpoint.every_timesteps=256",
            "eval.every_timesteps=0", f"hydra.run.dir={run_dir}"]
    proc = _cli(args, tmp_path)
    deadline = time.time() + 120
    while time.time() < deadline and not list((run_dir / "checkpoints").glob("ckpt_*.pt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(int(p.stem.split("_")[1]) for p in (run_dir / "checkpoints").glob("ckpt_[0-9]*.pt"))
    assert killed_at < 4096
    out, _ = _cli([*args, "resume=true"], tmp_path).communicate(timeout=300)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["total_timesteps"] == 4096, out
    assert int(Path(summary["resumed_from"]).stem.split("_")[1]) >= killed_at
    assert "summary:" in out and "learning curve" not in out  # logger=minimal: no plot


def test_cli_multirun_with_joblib(tmp_path):
    out, _ = _cli(["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *FAST, "logger=minimal",
                   "total_timesteps=256", f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path).communicate(timeout=300)
    summaries = sorted((tmp_path / "sweep").glob("*/summary.json"))
    assert len(summaries) == 2, out
    assert {json.loads(p.read_text())["seed"] for p in summaries} == {0, 1}


def test_demo_experiment_preset_composes(compose_cfg):
    cfg = compose_cfg("experiment=demo")
    assert cfg.env.id == "MiniGrid-DoorKey-5x5-v0" and cfg.total_timesteps == 300000 and cfg.run_name == "demo"


def test_app_trains_on_mujoco_through_the_adapter(compose_cfg, tmp_path):
    pytest.importorskip("mujoco")
    cfg = compose_cfg("env=mujoco", "env.num_envs=2", "env.vectorization=sync", "algo.params.n_steps=32",
                      "eval.num_episodes=2", "progress_bar=false", "logger=minimal", "total_timesteps=128")
    summary = train(cfg, tmp_path)
    assert summary["env_id"] == "HalfCheetah-v5" and summary["total_timesteps"] == 128
    assert math.isfinite(summary["eval_return_mean"]) and summary["eval_length_mean"] == 1000  # full-length episodes
