"""The runtime under faults and bad input: config values refused before work, naming the key;
progress.csv never left partial by a kill during resume; stale temp files cleaned up."""

from __future__ import annotations

import csv

import pytest

from rlcore.config import ConfigError
from rlcore.train import train

FAST = ["env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=8", "algo.params.n_steps=16", "eval.num_episodes=4",
        "progress_bar=false", "logger=minimal"]


@pytest.mark.parametrize("override, match", [
    ("algo.params.learning_rate=abc", "algo.params.learning_rate"),
    ("seed=abc", "seed"),
    ("algo.params.n_epochs=1.5", "algo.params.n_epochs"),
    ("algo.policy.activation=gelu", "algo.policy.activation must be one of tanh, relu"),
    ("+sede=1", "sede is not a known key"),
    ("+eval.every=5", "eval.every is not a known key"),
])
def test_bad_values_are_refused_at_composition(compose_cfg, override, match):
    with pytest.raises(ConfigError, match=match):
        compose_cfg(*FAST, override)


@pytest.mark.parametrize("override, match", [
    ("algo.params.n_minibatches=100000", r"n_minibatches=100000 exceeds .* 128 transitions"),
    ("num_threads=0", "num_threads must be null"),
    ("algo.policy.hidden_sizes=[]", "hidden_sizes must be a non-empty list"),
])
def test_bad_values_are_refused_before_any_work(compose_cfg, tmp_path, override, match):
    with pytest.raises(ValueError, match=match):
        train(compose_cfg(*FAST, "total_timesteps=256", override), tmp_path)
    assert not list(tmp_path.glob("checkpoints/*")) and not (tmp_path / "progress.csv").exists()


def test_kill_while_resuming_leaves_progress_csv_whole(compose_cfg, tmp_path, monkeypatch):
    train(compose_cfg(*FAST, "total_timesteps=512", "checkpoint.every_timesteps=256"), tmp_path)
    before = (tmp_path / "progress.csv").read_text()
    assert len(before.splitlines()) == 5

    import rlcore.atomic

    real_replace = rlcore.atomic.os.replace

    def killed(src, dst):
        if str(dst).endswith("progress.csv"):
            raise KeyboardInterrupt("killed between writing the new progress.csv and renaming it")
        real_replace(src, dst)

    monkeypatch.setattr(rlcore.atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        train(compose_cfg(*FAST, "total_timesteps=1024", "checkpoint.every_timesteps=256", "resume=true"), tmp_path)
    assert (tmp_path / "progress.csv").read_text() == before
    assert not list(tmp_path.glob("*.tmp"))
    monkeypatch.undo()
    train(compose_cfg(*FAST, "total_timesteps=1024", "checkpoint.every_timesteps=256", "resume=true"), tmp_path)
    steps = [int(r["time/timesteps"]) for r in csv.DictReader(open(tmp_path / "progress.csv"))]
    assert steps == [128 * i for i in range(1, 9)]


def test_stale_temp_files_are_removed(compose_cfg, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt_128.pt.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / "summary.json.tmp").write_text("{")
    train(compose_cfg(*FAST, "total_timesteps=128"), tmp_path)
    assert not list(tmp_path.rglob("*.tmp"))
