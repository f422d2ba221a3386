"""Exploration benchmark: bonuses x tasks x seeds with native PPO, aggregated with IQM and bootstrap CIs.

``run`` launches one Hydra multirun of the training app (joblib launcher, one torch thread per job)
into ``benchmarks/results/exploration/<name>/``; ``report`` reads every run's ``summary.json`` and
``progress.csv`` and prints a markdown table (final evaluation success per task and bonus, all seeds,
frames to reach 0.9 success, wall time), the interquartile mean over tasks x seeds with a stratified
bootstrap 95% CI, and writes learning-curve plots.

    python benchmarks/bench_exploration.py run --name pilot --tasks MiniGrid-DoorKey-16x16-v0 \
        MiniGrid-KeyCorridorS3R3-v0 --rewards none e3b --seeds 0 --frames 2000000
    python benchmarks/bench_exploration.py report --name pilot
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "exploration"


def run(args: argparse.Namespace) -> None:
    sweep = RESULTS / args.name
    cmd = [sys.executable, "-m", "rlcore.train", "-m",
           f"env.id={','.join(args.tasks)}", f"reward={','.join(args.rewards)}", f"seed={','.join(map(str, args.seeds))}",
           f"total_timesteps={args.frames}", f"eval.every_timesteps={args.eval_every}", "eval.num_episodes=64",
           f"checkpoint.every_timesteps={args.frames}", "progress_bar=false", "num_threads=1",
           "hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}", f"hydra.sweep.dir={sweep}",
           "hydra.sweep.subdir=${run_name}", *args.overrides]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def _curve(progress: Path) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    with open(progress, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("eval/success_rate", "") != "":
                xs.append(int(row["time/timesteps"]))
                ys.append(float(row["eval/success_rate"]))
    return xs, ys


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50% of the scores (Agarwal et al. 2021)."""
    s = np.sort(scores.ravel())
    n = len(s)
    lo, hi = int(np.floor(0.25 * n)), int(np.ceil(0.75 * n))
    return float(s[lo:hi].mean()) if hi > lo else float(s.mean())


def bootstrap_ci(per_task: list[np.ndarray], reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% CI of the IQM by a stratified bootstrap: seeds resampled with replacement within each task."""
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(reps):
        sample = np.concatenate([t[rng.integers(0, len(t), len(t))] for t in per_task])
        stats.append(iqm(sample))
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def report(args: argparse.Namespace) -> None:
    sweep = RESULTS / args.name
    runs = []
    for summary_path in sorted(sweep.glob("*/summary.json")):
        s = json.loads(summary_path.read_text())
        xs, ys = _curve(summary_path.parent / "progress.csv")
        reach = next((x for x, y in zip(xs, ys) if y >= 0.9), None)
        runs.append({**s, "curve": (xs, ys), "frames_to_0.9": reach})
    if not runs:
        raise SystemExit(f"no finished runs under {sweep}")
    by = defaultdict(list)
    for r in runs:
        by[(r["env_id"], r["reward"])].append(r)
    tasks = sorted({r["env_id"] for r in runs})
    rewards = sorted({r["reward"] for r in runs}, key=lambda k: (k != "none", k))
    print(f"## {args.name}: final evaluation success (64 episodes), budget {runs[0]['total_timesteps']:,} frames\n")
    print("| task | reward | seeds | success per seed | mean | frames to 0.9 (per seed) | wall time (s, mean) | fps (mean) |")
    print("|---|---|---:|---|---:|---|---:|---:|")
    for task in tasks:
        for reward in rewards:
            rs = sorted(by.get((task, reward), []), key=lambda r: r["seed"])
            if not rs:
                continue
            succ = [r["eval_success_rate"] for r in rs]
            reach = ", ".join(f"{r['frames_to_0.9']:,}" if r["frames_to_0.9"] else "—" for r in rs)
            print(f"| {task} | {reward} | {len(rs)} | {', '.join(f'{x:.2f}' for x in succ)} | {np.mean(succ):.2f} | "
                  f"{reach} | {np.mean([r['wall_time_s'] for r in rs]):.0f} | {np.mean([r['fps'] for r in rs]):,.0f} |")
    print("\n## aggregate over tasks x seeds: IQM of final success, stratified bootstrap 95% CI\n")
    print("| reward | runs | IQM | 95% CI |")
    print("|---|---:|---:|---|")
    for reward in rewards:
        per_task = [np.array([r["eval_success_rate"] for r in by[(t, reward)]]) for t in tasks if by.get((t, reward))]
        scores = np.concatenate(per_task)
        lo, hi = bootstrap_ci(per_task)
        print(f"| {reward} | {len(scores)} | {iqm(scores):.2f} | [{lo:.2f}, {hi:.2f}] |")
    _plot(by, tasks, rewards, sweep / "learning_curves.png")
    print(f"\nlearning curves: {sweep / 'learning_curves.png'}")


def _plot(by, tasks, rewards, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for reward in rewards:
            rs = by.get((task, reward), [])
            if not rs:
                continue
            xs = rs[0]["curve"][0]
            ys = np.array([r["curve"][1][:len(xs)] for r in rs if len(r["curve"][1]) >= len(xs)])
            if len(ys) == 0:
                continue
            line, = ax.plot(xs, ys.mean(0), label=reward)
            ax.fill_between(xs, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
        ax.set_title(task.replace("MiniGrid-", ""))
        ax.set_xlabel("environment frames")
        ax.set_ylabel("eval success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--name", required=True)
    r.add_argument("--tasks", nargs="+", required=True)
    r.add_argument("--rewards", nargs="+", default=["none", "e3b", "rnd", "e3b_x_rnd"])
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--frames", type=int, default=2_000_000)
    r.add_argument("--eval-every", type=int, default=250_000)
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    q = sub.add_parser("report")
    q.add_argument("--name", required=True)
    args = p.parse_args()
    run(args) if args.what == "run" else report(args)


if __name__ == "__main__":
    main()
