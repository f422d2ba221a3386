"""The exploration benchmark's bookkeeping and report, on fake run directories (no training).

``benchmarks/exploration_report.py`` decides what a re-run of a sweep does with each run directory
(skip, resume, start, leave alone), reads partial sweeps, counts seeds against the seeds asked for,
and aggregates with rliable; ``benchmarks/bench_exploration.py`` builds each run's command line.
Run directories here hold only what the training app would have written (``summary.json``,
``progress.csv``, ``config.yaml``, ``checkpoints/``), made up in ``tmp_path``.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import exploration_report as rep  # noqa: E402

TASK_A, TASK_B = "MiniGrid-DoorKey-16x16-v0", "MiniGrid-KeyCorridorS3R3-v0"


@pytest.fixture
def rliable():
    """The report's aggregates need the optional ``bench`` dependencies (``pip install -e '.[bench]'``)."""
    return pytest.importorskip("rliable")


def make_run(sweep: Path, task: str, reward: str, seed: int, *, frames: int = 1000, success: float | None = 0.5,
             evals: tuple = ((500, 0.1),), done_frames: int | None = None, ckpts: tuple = (), coverage: bool = True,
             config_extra: dict | None = None) -> Path:
    """A run directory as the training app leaves it: ``success=None`` means unfinished (no summary)."""
    run_dir = sweep / rep.run_dir_name(task, reward, seed)
    run_dir.mkdir(parents=True)
    cols = ["time/timesteps", "rollout/ep_return_mean"] + ([rep.COVERAGE_EPISODE] if coverage else []) + [rep.SUCCESS,
                                                                                                          rep.RETURN]
    with open(run_dir / "progress.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, restval="")
        w.writeheader()
        evals_at = dict(evals)
        for x in range(250, (done_frames or frames) + 1, 250):
            row = {"time/timesteps": x, "rollout/ep_return_mean": 0.0}
            if coverage:
                row[rep.COVERAGE_EPISODE] = 0.3
            if x in evals_at:
                row[rep.SUCCESS], row[rep.RETURN] = evals_at[x], evals_at[x] / 2
            w.writerow(row)
    config = {"env": {"id": task}, "reward": {"name": reward, "module": None if reward == "none" else {"normalize": True}},
              "seed": seed}
    for key, value in (config_extra or {}).items():
        node = config
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    import yaml

    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    if ckpts:
        (run_dir / "checkpoints").mkdir()
        for n in ckpts:
            (run_dir / "checkpoints" / f"ckpt_{n}.pt").write_bytes(b"x")
    if success is not None:
        summary = {"env_id": task, "reward": reward, "seed": seed, "total_timesteps": done_frames or frames,
                   "wall_time_s": 10.0 + seed, "fps": 100.0, "eval_success_rate": success,
                   "eval_return_mean": success / 2, "resumed_from": None}
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def write_manifest(sweep: Path, tasks, rewards, seeds, protocol: dict | None = None) -> None:
    sweep.mkdir(parents=True, exist_ok=True)
    (sweep / rep.MANIFEST).write_text(json.dumps({
        "name": sweep.name, "protocol": protocol or {"experiment": "exploration_minigrid", "frames": 1000},
        "grid": {"tasks": list(tasks), "rewards": list(rewards), "seeds": list(seeds)}, "invocations": []}))


# ------------------------------------------------------------------------------ resume decisions
def test_run_status_decides_skip_resume_start(tmp_path):
    sweep = tmp_path / "s"
    assert rep.run_status(sweep / "nothing", 1000)[0] == rep.NEW
    done = make_run(sweep, TASK_A, "e3b", 0, frames=1000)
    assert rep.run_status(done, 1000)[0] == rep.COMPLETE
    assert rep.run_status(done, 900)[0] == rep.COMPLETE            # past the budget is complete too
    assert rep.run_status(done, 2000)[0] == rep.RESUME             # a larger budget resumes it
    ckpt = make_run(sweep, TASK_A, "e3b", 1, success=None, done_frames=500, ckpts=(250, 500))
    status, why = rep.run_status(ckpt, 1000)
    assert status == rep.RESUME and "500" in why
    log_only = make_run(sweep, TASK_A, "e3b", 2, success=None, done_frames=250)
    assert rep.run_status(log_only, 1000)[0] == rep.RESUME
    empty = sweep / "empty"
    empty.mkdir()
    assert rep.run_status(empty, 1000)[0] == rep.NEW


def test_checkpoints_sort_by_frames_not_name(tmp_path):
    run = make_run(tmp_path, TASK_A, "e3b", 0, success=None, ckpts=(8192, 16384, 32768))
    assert [n for n, _ in rep.checkpoints(run)] == [8192, 16384, 32768]
    assert "32,768" in rep.run_status(run, 10**6)[1]


def test_truncated_or_incomplete_summary_is_not_complete(tmp_path):
    run = make_run(tmp_path, TASK_A, "e3b", 0, ckpts=(500,))
    (run / "summary.json").write_text('{"env_id": "x", "rew')     # a torn write
    assert rep.read_summary(run) is None
    assert rep.run_status(run, 1000)[0] == rep.RESUME
    (run / "summary.json").write_text(json.dumps({"env_id": TASK_A}))  # keys missing
    assert rep.run_status(run, 1000)[0] == rep.RESUME


def test_live_training_process_is_left_alone_and_stale_pid_is_not(tmp_path):
    run = make_run(tmp_path, TASK_A, "e3b", 0, success=None, ckpts=(500,))
    (run / rep.PID_FILE).write_text(json.dumps({"pid": os.getpid()}))  # pytest: not rlcore.train
    assert rep.run_status(run, 1000)[0] == rep.RESUME
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "rlcore.train"])
    try:
        (run / rep.PID_FILE).write_text(json.dumps({"pid": proc.pid}))
        deadline = time.time() + 10
        while rep.owner_pid(run) is None and time.time() < deadline:  # /proc cmdline appears after exec
            time.sleep(0.05)
        assert rep.run_status(run, 1000)[0] == rep.RUNNING
    finally:
        proc.kill()
        proc.wait()
    assert rep.run_status(run, 1000)[0] == rep.RESUME


def test_plan_covers_the_grid(tmp_path):
    sweep = tmp_path / "s"
    make_run(sweep, TASK_A, "none", 0)
    make_run(sweep, TASK_A, "e3b", 0, success=None, ckpts=(250,))
    items = rep.plan(sweep, [TASK_A], ["none", "e3b"], [0, 1], frames=1000)
    got = {(i["reward"], i["seed"]): i["status"] for i in items}
    assert got == {("none", 0): rep.COMPLETE, ("none", 1): rep.NEW, ("e3b", 0): rep.RESUME, ("e3b", 1): rep.NEW}


def test_manifest_grid_and_protocol():
    grid = rep.merge_grid({"tasks": [TASK_A], "rewards": ["none"], "seeds": [0, 1]}, [TASK_B], ["none", "e3b"], [2, 0])
    assert grid == {"tasks": [TASK_A, TASK_B], "rewards": ["none", "e3b"], "seeds": [0, 1, 2]}
    assert rep.protocol_mismatch({"frames": 10, "experiment": "a"}, {"frames": 10, "experiment": "a"}) == []
    diff = rep.protocol_mismatch({"frames": 10, "experiment": "a"}, {"frames": 20, "experiment": "a"})
    assert len(diff) == 1 and diff[0].startswith("frames")


def test_overlapping_invocations_keep_each_others_records(tmp_path):
    import bench_exploration as bench

    sweep, proto = tmp_path / "sweep", {"experiment": "exploration_minigrid", "frames": 1000}
    a, b = {"id": "a", "ended": "running"}, {"id": "b", "ended": "running"}
    bench._update_manifest(sweep, lambda m: bench.begin_invocation(m, "sweep", proto, [TASK_A], ["e3b"], [0], a))
    # a second invocation adds seeds while the first still runs; then the first ends, then the second
    bench._update_manifest(sweep, lambda m: bench.begin_invocation(m, "sweep", proto, [TASK_A], ["e3b"], [0, 1, 2], b))
    bench._update_manifest(sweep, lambda m: bench.end_invocation(m, {**a, "ended": "finished"}))
    final = bench._update_manifest(sweep, lambda m: bench.end_invocation(m, {**b, "ended": "interrupted"}))
    assert [(r["id"], r["ended"]) for r in final["invocations"]] == [("a", "finished"), ("b", "interrupted")]
    assert final["grid"]["seeds"] == [0, 1, 2]
    assert json.loads((sweep / rep.MANIFEST).read_text()) == final


def test_a_run_taken_by_another_invocation_is_not_started_twice(tmp_path):
    import bench_exploration as bench

    sweep = tmp_path / "sweep"
    done = make_run(sweep, TASK_A, "e3b", 0, success=0.5)
    live = make_run(sweep, TASK_A, "e3b", 1, success=None, ckpts=(500,))
    fresh = sweep / rep.run_dir_name(TASK_A, "e3b", 2)
    started = []
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "rlcore.train"])
    try:
        (live / rep.PID_FILE).write_text(json.dumps({"pid": proc.pid}))
        deadline = time.time() + 10
        while rep.owner_pid(live) is None and time.time() < deadline:
            time.sleep(0.05)
        results = [bench.claim_run(sweep, {"run_dir": d}, 1000, lambda d=d: started.append(d.name) or d.name)
                   for d in (done, live, fresh)]
    finally:
        proc.kill()
        proc.wait()
    assert results == [None, None, fresh.name]  # complete, owned by a live process, free
    assert started == [fresh.name]


# ------------------------------------------------------------------------------------ commands
def test_train_command_resumes_and_scopes_bonus_overrides(tmp_path):
    import bench_exploration as bench

    proto = {"experiment": "rlexplore_minigrid", "frames": 1000, "eval_every": 500, "eval_episodes": 8,
             "overrides": ["env.num_envs=8"], "bonus_overrides": ["reward.module.gamma=0.0"]}
    none = bench.train_command(proto, TASK_A, "none", 0, tmp_path / "r0", 500)
    e3b = bench.train_command(proto, TASK_A, "e3b", 1, tmp_path / "r1", 500)
    for cmd in (none, e3b):
        assert "resume=true" in cmd and "experiment=rlexplore_minigrid" in cmd and "total_timesteps=1000" in cmd
        assert cmd[-1] == "env.num_envs=8"                        # user overrides come last and win
    assert f"hydra.run.dir={tmp_path / 'r1'}" in e3b
    assert "reward.module.gamma=0.0" in e3b and "reward.module.gamma=0.0" not in none


def test_rlexplore_protocol_composes(tmp_path):
    import argparse

    import bench_exploration as bench

    args = argparse.Namespace(experiment="rlexplore_minigrid", overrides=[], frames=None, eval_every=None,
                              eval_episodes=64, bonus_overrides=[])
    proto = bench.protocol_of(args)
    assert proto["frames"] == 10_000_000 and proto["eval_every"] == 500_000
    assert proto["bonus_overrides"] == list(bench.PROTOCOL_BONUS_OVERRIDES["rlexplore_minigrid"])
    from rlcore.config import compose_config

    cfg = compose_config("train", ["experiment=rlexplore_minigrid", "reward=e3b", *proto["bonus_overrides"]])
    p = cfg.algo.params
    assert (cfg.env.num_envs, p.n_steps, p.learning_rate, p.clip_range, p.ext_coef, p.int_coef) == (256, 32, 2.5e-4,
                                                                                                    0.1, 100.0, 0.25)
    assert cfg.reward.module.gamma == 0.0 and cfg.reward.module.episodic is True
    assert p.single_value_stream
    assert cfg.env.options == {"obs_mode": "full"}  # RLLTE's MiniGrid default: the whole grid, fully observable
    # the bonus networks read the observation without the separate heading, E3B with RLLTE's embedding settings
    e3b_cmd = bench.train_command(proto, TASK_A, "e3b", 0, tmp_path / "e", 500)
    rnd_cmd = bench.train_command(proto, TASK_A, "rnd", 0, tmp_path / "r", 500)
    none_cmd = bench.train_command(proto, TASK_A, "none", 0, tmp_path / "n", 500)
    assert "++reward.module.bonuses.e3b.encoder=grid_view" in e3b_cmd
    assert "++reward.module.bonuses.rnd.encoder=grid_view" in rnd_cmd
    assert not any("bonuses.e3b" in c for c in rnd_cmd) and not any("bonuses." in c for c in none_cmd)
    for reward, cmd in (("e3b", e3b_cmd), ("rnd", rnd_cmd)):
        overrides = [c for c in cmd if c.startswith("reward.") or c.startswith("++reward.")]
        built = compose_config("train", ["experiment=rlexplore_minigrid", f"reward={reward}", *overrides])
        bonus = built.reward.module.bonuses[reward]
        assert bonus.encoder == "grid_view"
    e3b = compose_config("train", ["experiment=rlexplore_minigrid", "reward=e3b",
                                   *[c for c in e3b_cmd if "bonuses.e3b" in c]]).reward.module.bonuses.e3b
    assert (e3b.features, e3b.embed_dim, e3b.normalize_features, e3b.lr, e3b.minibatch_size) == ("obs", 128, False, 1e-3, 256)
    plain = bench.protocol_of(argparse.Namespace(experiment="exploration_minigrid", overrides=[], frames=None,
                                                 eval_every=None, eval_episodes=64, bonus_overrides=[]))
    assert "reward_overrides" not in plain
    assert compose_config("train", ["experiment=rlexplore_minigrid", "reward=none"]).reward.module is None


# --------------------------------------------------------------------------------------- report
def partial_sweep(tmp_path: Path) -> Path:
    """3 seeds asked on two tasks: `none` complete everywhere; `e3b` complete on seeds 0-1 of task A
    and seed 0 of task B, seed 2 of A unfinished, seeds 1-2 of B never started."""
    sweep = tmp_path / "sweep"
    write_manifest(sweep, [TASK_A, TASK_B], ["none", "e3b"], [0, 1, 2])
    for task in (TASK_A, TASK_B):
        for seed in (0, 1, 2):
            make_run(sweep, task, "none", seed, success=0.0)
    make_run(sweep, TASK_A, "e3b", 0, success=1.0, evals=((500, 0.95),))
    make_run(sweep, TASK_A, "e3b", 1, success=0.8, evals=((500, 0.2),))
    make_run(sweep, TASK_A, "e3b", 2, success=None, done_frames=500, ckpts=(500,))
    make_run(sweep, TASK_B, "e3b", 0, success=0.6)
    return sweep


def test_collect_names_complete_partial_and_missing(tmp_path):
    runs, info = rep.collect([partial_sweep(tmp_path)])
    status = {(r.task, r.reward, r.seed): r.status for r in runs}
    assert status[(TASK_A, "e3b", 2)] == "partial"
    assert status[(TASK_B, "e3b", 1)] == status[(TASK_B, "e3b", 2)] == "missing"
    assert sum(s == "complete" for s in status.values()) == 9
    partial = next(r for r in runs if r.status == "partial")
    assert partial.frames == 500 and partial.success is None
    e3b0 = next(r for r in runs if (r.task, r.reward, r.seed) == (TASK_A, "e3b", 0))
    assert e3b0.frames_to(0.9) == 500                      # first evaluation at or above 0.9
    assert list(e3b0.curve()[0]) == [500, 1000]            # the final evaluation appended from the summary


def test_table_counts_seeds_against_seeds_asked(tmp_path, rliable):
    text = rep.markdown_report([partial_sweep(tmp_path)], tmp_path / "plots", reps=200, plots=False)
    first_table = text.split("## Final evaluation success")[1].split("\n## ")[0]
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): [c.strip() for c in line.split("|")[1:-1]]
            for line in first_table.splitlines() if line.startswith("| MiniGrid-")}
    assert rows[(TASK_A, "none")][3] == "3"
    assert rows[(TASK_A, "e3b")][3] == "2 of 3"
    assert rows[(TASK_B, "e3b")][3] == "1 of 3"
    assert rows[(TASK_A, "e3b")][4] == "1.00, 0.80"
    assert "**Fewer seeds than asked**" in text
    assert f"{TASK_A} / e3b: 2 of 3 complete (unfinished: seed 2 at 500 frames)" in text
    assert f"{TASK_B} / e3b: 1 of 3 complete (not started: seed 1, seed 2)" in text
    # the aggregate uses one complete seed per task for e3b (B has one), and leaves A's seed 1 out
    agg = next(line for line in text.splitlines() if line.startswith("| e3b |"))
    assert "| 2 | 1 (CI degenerate) | 2 |" in agg and "DoorKey-16x16-v0 seed 1" in agg
    assert "episode coverage" in text


def test_report_without_coverage_says_so(tmp_path, rliable):
    sweep = tmp_path / "s"
    make_run(sweep, TASK_A, "none", 0, coverage=False)
    text = rep.markdown_report([sweep], tmp_path, reps=100, plots=False)
    assert "No run logged a coverage metric" in text
    assert "no sweep.json" in text                        # a sweep from before the manifest still reports


def test_report_writes_plots_for_a_partial_sweep(tmp_path, rliable):
    sweep = partial_sweep(tmp_path)
    text = rep.markdown_report([sweep], sweep, reps=100, plots=True)
    for name in ("learning_curves.png", "performance_profile.png"):
        assert (sweep / name).stat().st_size > 0 and name in text


def test_select_scores_makes_the_matrix_rectangular(tmp_path):
    runs, _ = rep.collect([partial_sweep(tmp_path)])
    sel = rep.select_scores(runs, "e3b", [TASK_A, TASK_B])
    assert sel.scores.shape == (1, 2)                      # seeds x tasks
    np.testing.assert_allclose(sel.scores, [[1.0, 0.6]])
    assert [(r.task, r.seed) for r in sel.left_out] == [(TASK_A, 1)]
    assert rep.select_scores(runs, "rnd", [TASK_A, TASK_B]) is None


def test_rliable_iqm_matches_a_hand_computation(rliable):
    scores = np.array([[0.1, 0.9], [0.2, 0.5], [0.4, 0.3], [1.0, 0.0]])   # 4 seeds x 2 tasks
    middle = np.sort(scores.ravel())[2:6]                  # drop the lowest and highest quarter (2 of 8 each)
    sel = rep.Selection("x", [TASK_A, TASK_B], {TASK_A: [0, 1, 2, 3], TASK_B: [0, 1, 2, 3]}, scores, [])
    out = rep.aggregate([sel], reps=500)["x"]
    assert out["iqm"] == pytest.approx(middle.mean())      # (0.2 + 0.3 + 0.4 + 0.5) / 4
    assert out["mean"] == pytest.approx(scores.mean())
    lo, hi = out["iqm_ci"]
    assert 0.0 <= lo <= out["iqm"] <= hi <= 1.0 and hi > lo
    assert rep.aggregate([sel], reps=500)["x"]["iqm_ci"] == (lo, hi)   # seeded: the same CI twice


def test_sweeps_of_different_protocols_never_share_a_row(tmp_path):
    a, b = tmp_path / "lib", tmp_path / "rlx"
    write_manifest(a, [TASK_A], ["e3b"], [0], protocol={"experiment": "exploration_minigrid"})
    write_manifest(b, [TASK_A], ["e3b"], [0], protocol={"experiment": "rlexplore_minigrid"})
    make_run(a, TASK_A, "e3b", 0, success=0.1)
    make_run(b, TASK_A, "e3b", 0, success=0.9)
    runs, info = rep.collect([a, b])
    assert sorted((r.reward, r.success) for r in runs) == [("e3b [lib]", 0.1), ("e3b [rlx]", 0.9)]
    assert {r.bonus for r in runs} == {"e3b"}
    c = tmp_path / "more"                                  # same protocol as lib: one row
    write_manifest(c, [TASK_A], ["e3b"], [1], protocol={"experiment": "exploration_minigrid"})
    make_run(c, TASK_A, "e3b", 1, success=0.3)
    runs, _ = rep.collect([a, c])
    assert sorted((r.reward, r.seed) for r in runs) == [("e3b", 0), ("e3b", 1)]


def test_published_rows_match_recipe_by_task_and_config(tmp_path, rliable):
    sweep = tmp_path / "s"
    write_manifest(sweep, [TASK_A], ["e3b"], [0, 1], protocol={"experiment": "rlexplore_minigrid"})
    make_run(sweep, TASK_A, "e3b", 0, success=0.7)
    make_run(sweep, TASK_A, "e3b", 1, success=0.2, config_extra={"reward.module.normalize": False})
    make_run(sweep, TASK_B, "e3b", 0, success=0.9)           # another task: not beside DoorKey-16x16's figure
    runs, _ = rep.collect([sweep])
    normalised, raw = rep.PUBLISHED[0], rep.PUBLISHED[2]
    assert [(r.task, r.seed) for r in rep.matching_runs(runs, normalised)] == [(TASK_A, 0)]
    assert [(r.task, r.seed) for r in rep.matching_runs(runs, raw)] == [(TASK_A, 1)]
    text = rep.markdown_report([sweep], tmp_path, reps=100, plots=False)
    row = next(line for line in text.splitlines() if line.startswith("| RLeXplore") and "| E3B |" in line)
    assert "success 0.70" in row and "`rlexplore_minigrid`" in row and "1 seed," in row
