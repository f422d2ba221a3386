"""Exploration benchmark: bonuses x tasks x seeds with native PPO, aggregated with IQM and bootstrap CIs.

``run`` launches one Hydra multirun of the training app (joblib launcher, one torch thread per job)
into ``benchmarks/results/exploration/<name>/``; ``report`` reads every run's ``summary.json`` and
``progress.csv`` and prints a markdown table (final evaluation success per task and bonus, all seeds,
frames to reach 0.9 success, wall time), the interquartile mean over tasks x seeds with a stratified
bootstrap 95% CI, and writes learning-curve plots.

    python benchmarks/bench_exploration.py run --name pilot --tasks MiniGrid-DoorKey-16x16-v0 \
        MiniGrid-KeyCorridorS3R3-v0 --rewards none e3b --seeds 0 --frames 2000000
    python benchmarks/bench_exploration.py sb3 --name pilot --tasks MiniGrid-KeyCorridorS3R3-v0 --rewards e3b \
        --seeds 0 --frames 2000000                     # the same bonus through SB3 PPO + RewardModuleCallback
    python benchmarks/bench_exploration.py report --name pilot

``sb3`` trains SB3's PPO on the library's batched MiniGrid (``SB3VecEnv``, ``--num-envs``) with the
same network (``grid_policy_kwargs(encoder=...)``), the same PPO shape (n_steps 128, 8 minibatches,
4 epochs, lr 5e-4, entropy 0.01) and the bonus built from the same ``configs/reward/<name>.yaml``,
applied through ``RewardModuleCallback`` (own intrinsic critic, advantages 2:1 as native PPO); its
runs appear in the report as ``sb3:<reward>``. With ``--with-native`` each SB3 run is followed by
the native path on the same settings, under the same machine load (its run goes to
``<name>_native_twin/``, outside the report's sweep), and the fps ratio is written to
``<name>/fps_ratio-*.json`` and printed.
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


def run_sb3(args: argparse.Namespace) -> None:
    import time

    import torch
    from rlcore.config import compose_config
    from hydra.utils import instantiate
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.callbacks import BaseCallback

    import envs.minigrid as mg
    from rlcore.adapters.sb3 import SB3VecEnv
    from rlcore.adapters.sb3_policies import grid_policy_kwargs
    from rlcore.adapters.sb3_rewards import RewardModuleCallback
    from rlcore.evaluation import evaluate_policy

    def sb3_actions(model):
        """The SB3 model's actions as an action function of torch dict observations."""
        return lambda o: torch.as_tensor(model.predict({k: v.numpy() for k, v in o.items()})[0])

    class Evaluate(BaseCallback):
        """Evaluates every ``eval_every`` frames into ``rows``; ``seconds`` is the time spent evaluating."""

        def __init__(self, eval_env, eval_seed: int, rows: list[dict]):
            super().__init__()
            self.eval_env, self.eval_seed, self.rows = eval_env, eval_seed, rows
            self.next, self.seconds = args.eval_every, 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next:
                self.next += args.eval_every
                t0 = time.perf_counter()
                res = evaluate_policy(sb3_actions(self.model), self.eval_env, seed=self.eval_seed)
                self.seconds += time.perf_counter() - t0
                self.rows.append({"time/timesteps": self.num_timesteps, "eval/success_rate": res["success_rate"],
                                  "eval/return_mean": res["return_mean"]})
            return True

    torch.set_num_threads(1)
    for task in args.tasks:
        for reward in args.rewards:
            for seed in args.seeds:
                out = RESULTS / args.name / f"sb3-{task}-{reward}-seed{seed}"
                out.mkdir(parents=True, exist_ok=True)
                env = mg.make(task, num_envs=args.num_envs, seed=seed)
                venv = SB3VecEnv(env)
                model = SB3PPO("MultiInputPolicy", venv, n_steps=128, batch_size=args.num_envs * 128 // 8, n_epochs=4,
                               learning_rate=5e-4, ent_coef=0.01, clip_range_vf=0.2, seed=seed, device="cpu",
                               policy_kwargs=grid_policy_kwargs(encoder=args.encoder))
                callbacks = []
                if reward != "none":
                    cfg = compose_config("train", [f"reward={reward}"])
                    module = instantiate(cfg.reward.module, observation_space=env.single_observation_space,
                                         action_space=env.single_action_space, _convert_="all")
                    callbacks.append(RewardModuleCallback(module, ext_coef=2.0, int_coef=1.0))
                eval_env = mg.make(task, num_envs=64, seed=seed + 10_000)
                rows: list[dict] = []
                evaluator = Evaluate(eval_env, seed + 10_000, rows)
                t0 = time.perf_counter()
                model.learn(args.frames, callback=callbacks + [evaluator])
                wall = time.perf_counter() - t0 - evaluator.seconds
                final = evaluate_policy(sb3_actions(model), eval_env, seed=seed + 10_000)
                rows.append({"time/timesteps": model.num_timesteps, "eval/success_rate": final["success_rate"],
                             "eval/return_mean": final["return_mean"]})
                with open(out / "progress.csv", "w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=["time/timesteps", "eval/success_rate", "eval/return_mean"])
                    writer.writeheader()
                    writer.writerows(rows)
                summary = {"env_id": task, "reward": f"sb3:{reward}", "seed": seed, "total_timesteps": model.num_timesteps,
                           "wall_time_s": wall, "fps": model.num_timesteps / wall,
                           "eval_success_rate": final["success_rate"], "eval_return_mean": final["return_mean"]}
                (out / "summary.json").write_text(json.dumps(summary, indent=2))
                print(json.dumps(summary), flush=True)
                if args.with_native:
                    _native_twin(args, task, reward, seed, summary)


def _native_twin(args: argparse.Namespace, task: str, reward: str, seed: int, sb3_summary: dict) -> None:
    """Train the native path on the same task, bonus, seed, budget and network right after the SB3
    run (same machine state), and print the fps ratio of the two."""
    from rlcore.config import compose_config

    from rlcore.train import train

    cfg = compose_config("train", [
            f"env.id={task}", f"reward={reward}", f"seed={seed}", f"total_timesteps={args.frames}",
            f"env.num_envs={args.num_envs}", f"algo.policy.encoder={args.encoder}",
            f"eval.every_timesteps={args.eval_every}", "eval.num_episodes=64", f"checkpoint.every_timesteps={args.frames}",
            "progress_bar=false", "num_threads=1", "logger=minimal", "diagnostics.visitation=false", "overwrite=true"])
    native = train(cfg, RESULTS / f"{args.name}_native_twin" / f"{task}-{reward}-seed{seed}")
    ratio = native["fps"] / sb3_summary["fps"]
    line = {"task": task, "reward": reward, "seed": seed, "native_fps": native["fps"], "sb3_fps": sb3_summary["fps"],
            "native_over_sb3": ratio, "native_success": native["eval_success_rate"],
            "sb3_success": sb3_summary["eval_success_rate"]}
    (RESULTS / args.name / f"fps_ratio-{task}-{reward}-seed{seed}.json").write_text(json.dumps(line, indent=2))
    print(json.dumps(line), flush=True)


def _curve(progress: Path, column: str = "eval/success_rate") -> tuple[list[int], list[float]]:
    """Evaluation points ``(frames, values)`` of one run's ``progress.csv``."""
    xs, ys = [], []
    with open(progress, newline="") as f:
        for row in csv.DictReader(f):
            if row.get(column, "") != "":
                xs.append(int(row["time/timesteps"]))
                ys.append(float(row[column]))
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
    """Tables and plots over every finished run of the sweeps named by ``--name`` (one or more)."""
    names = args.name if isinstance(args.name, list) else [args.name]
    sweep = RESULTS / names[0]
    runs = []
    for name in names:
        for summary_path in sorted((RESULTS / name).glob("*/summary.json")):
            s = json.loads(summary_path.read_text())
            xs, ys = _curve(summary_path.parent / "progress.csv")
            reach = next((x for x, y in zip(xs, ys) if y >= 0.9), None)
            runs.append({**s, "curve": (xs, ys), "return_curve": _curve(summary_path.parent / "progress.csv", "eval/return_mean"),
                         "frames_to_0.9": reach})
    if not runs:
        raise SystemExit(f"no finished runs under {', '.join(str(RESULTS / n) for n in names)}")
    by = defaultdict(list)
    for r in runs:
        by[(r["env_id"], r["reward"])].append(r)
    tasks = sorted({r["env_id"] for r in runs})
    rewards = sorted({r["reward"] for r in runs}, key=lambda k: (k != "none", k))
    print(f"## {' + '.join(names)}: final evaluation success (64 episodes)\n")
    print("| task | reward | frames | seeds | success per seed | mean | frames to 0.9 (per seed) "
          "| wall time (s, mean) | fps (mean) |")
    print("|---|---|---:|---:|---|---:|---|---:|---:|")
    for task in tasks:
        for reward in rewards:
            rs = sorted(by.get((task, reward), []), key=lambda r: r["seed"])
            if not rs:
                continue
            succ = [r["eval_success_rate"] for r in rs]
            reach = ", ".join(f"{r['frames_to_0.9']:,}" if r["frames_to_0.9"] else "—" for r in rs)
            per_seed = ", ".join(f"{x:.2f}" for x in succ)
            print(f"| {task} | {reward} | {rs[0]['total_timesteps']:,} | {len(rs)} | {per_seed} | {np.mean(succ):.2f} | "
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
    """Eval success (top row) and eval return (bottom row) per task: mean over seeds, min-max band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(tasks), figsize=(5 * len(tasks), 7.2), squeeze=False)
    for col, task in enumerate(tasks):
        for row, (key, label) in enumerate([("curve", "eval success rate"), ("return_curve", "eval return")]):
            ax = axes[row][col]
            for reward in rewards:
                rs = by.get((task, reward), [])
                if not rs:
                    continue
                xs = min((r[key][0] for r in rs), key=len)
                ys = np.array([r[key][1][:len(xs)] for r in rs])
                if len(xs) == 0:
                    continue
                line, = ax.plot(xs, ys.mean(0), label=f"{reward} ({len(rs)} seeds)")
                ax.fill_between(xs, ys.min(0), ys.max(0), color=line.get_color(), alpha=0.2)
            ax.set_title(task.replace("MiniGrid-", ""))
            ax.set_xlabel("environment frames")
            ax.set_ylabel(label)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.legend(fontsize=8)
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
    b = sub.add_parser("sb3")
    b.add_argument("--name", required=True)
    b.add_argument("--tasks", nargs="+", required=True)
    b.add_argument("--rewards", nargs="+", default=["e3b"])
    b.add_argument("--seeds", type=int, nargs="+", default=[0])
    b.add_argument("--frames", type=int, default=2_000_000)
    b.add_argument("--eval-every", type=int, default=250_000)
    b.add_argument("--num-envs", type=int, default=256, help="as native env.num_envs")
    b.add_argument("--encoder", choices=["mlp", "minigrid"], default="mlp", help="as native algo.policy.encoder")
    b.add_argument("--with-native", action="store_true",
                   help="right after each SB3 run, train the native path on the same settings and report the fps ratio")
    q = sub.add_parser("report")
    q.add_argument("--name", required=True, nargs="+", help="one or more sweeps, reported together")
    args = p.parse_args()
    {"run": run, "sb3": run_sb3, "report": report}[args.what](args)


if __name__ == "__main__":
    main()
