"""Learning benchmark: native PPO on the batched MiniGrid vs SB3 PPO (MLP, defaults) on Farama MiniGrid.

Native runs go through the training app (``rlcore.train.train``) with the default PPO config, so
they are exactly what ``python -m rlcore.train env.id=... total_timesteps=... seed=...`` does.
Success rate = fraction of 64 evaluation episodes (one per env of a separately seeded eval env,
stochastic policy) that end by reaching the goal, measured at the end of the budget; "frames to
0.95/0.9" is the first periodic evaluation at or above the threshold.

SB3 runs use ``PPO("MlpPolicy", env)`` with SB3's defaults (n_steps 2048, batch 64, 10 epochs,
lr 3e-4, ent_coef 0) on 8 Farama envs (DummyVecEnv) observing the flattened 7x7x3 image, and are
evaluated the same way on 64 fresh Farama episodes, every 50k frames and at the end (wall time
excludes the evaluations).

    python benchmarks/bench_learning.py native --seeds 0 1 2          # writes results/learning_native.json
    python benchmarks/bench_learning.py sb3 --seeds 0 1 2             # writes results/learning_sb3.json
    python benchmarks/bench_learning.py report                        # markdown table from both
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent

# task -> (frame budget, success threshold, eval interval)
NATIVE_TASKS = {
    "MiniGrid-DoorKey-5x5-v0": (300_000, 0.95, 25_000),
    "MiniGrid-DoorKey-8x8-v0": (3_000_000, 0.9, 250_000),
}
SB3_TASKS = {"MiniGrid-DoorKey-5x5-v0": (500_000, 0.95, 50_000)}


def _frames_to(progress_csv: Path, threshold: float) -> int | None:
    with open(progress_csv, newline="") as f:
        for row in csv.DictReader(f):
            value = row.get("eval/success_rate", "")
            if value != "" and float(value) >= threshold:
                return int(row["time/timesteps"])
    return None


def run_native(seeds: list[int], tasks: list[str], out: Path) -> None:
    from rlcore.config import compose_config

    from rlcore.train import train

    results = json.loads(out.read_text()) if out.exists() else []
    for task in tasks:
        budget, threshold, every = NATIVE_TASKS[task]
        for seed in seeds:
            run_dir = RESULTS / "runs" / f"{task}-seed{seed}"
            cfg = compose_config("train", [
                    f"env.id={task}", f"seed={seed}", f"total_timesteps={budget}", f"eval.every_timesteps={every}",
                    f"checkpoint.every_timesteps={budget}", "overwrite=true", "progress_bar=false",
                ])
            summary = train(cfg, run_dir)
            row = {"trainer": "native PPO (batched torch MiniGrid)", "task": task, "seed": seed, "budget": budget,
                   "threshold": threshold, "success_rate": summary["eval_success_rate"],
                   "return_mean": summary["eval_return_mean"], "wall_time_s": summary["wall_time_s"],
                   "fps": summary["fps"], "frames_to_threshold": _frames_to(run_dir / "progress.csv", threshold)}
            print(json.dumps(row), flush=True)
            results = [r for r in results if not (r["task"] == task and r["seed"] == seed and r["trainer"] == row["trainer"])]
            results.append(row)
            out.write_text(json.dumps(results, indent=1))


def _sb3_eval(model, task: str, episodes: int, seed: int) -> tuple[float, float]:
    import gymnasium as gym
    import minigrid  # noqa: F401

    successes, returns = [], []
    for i in range(episodes):
        env = gym.make(task)
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs["image"].reshape(-1), deterministic=False)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            total += float(reward)
            done = terminated or truncated
        successes.append(terminated and total > 0)
        returns.append(total)
    return float(np.mean(successes)), float(np.mean(returns))


def run_sb3(seeds: list[int], out: Path) -> None:
    import gymnasium as gym
    import minigrid  # noqa: F401
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env

    class FlatImage(gym.ObservationWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.observation_space = gym.spaces.Box(0, 255, (147,), np.uint8)

        def observation(self, obs):
            return obs["image"].reshape(-1)

    results = json.loads(out.read_text()) if out.exists() else []
    from stable_baselines3.common.callbacks import BaseCallback

    class PeriodicEval(BaseCallback):
        """Evaluates every ``every`` frames; records the first frame count at or above the threshold."""

        def __init__(self, task: str, every: int, threshold: float, seed: int):
            super().__init__()
            self.task, self.every, self.threshold, self.seed = task, every, threshold, seed
            self.next_eval, self.reached, self.eval_seconds = every, None, 0.0

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self.next_eval += self.every
                t0 = time.perf_counter()
                success, _ = _sb3_eval(self.model, self.task, 64, seed=10_000 + self.seed)
                self.eval_seconds += time.perf_counter() - t0
                if self.reached is None and success >= self.threshold:
                    self.reached = self.num_timesteps
            return True

    for task, (budget, threshold, every) in SB3_TASKS.items():
        for seed in seeds:
            vec_env = make_vec_env(task, n_envs=8, seed=seed, wrapper_class=FlatImage)
            model = SB3PPO("MlpPolicy", vec_env, seed=seed, device="cpu", verbose=0)
            evaluator = PeriodicEval(task, every, threshold, seed)
            t0 = time.perf_counter()
            model.learn(budget, callback=evaluator)
            wall = time.perf_counter() - t0 - evaluator.eval_seconds
            success, ret = _sb3_eval(model, task, 64, seed=10_000 + seed)
            row = {"trainer": "SB3 PPO (MlpPolicy, defaults, Farama MiniGrid)", "task": task, "seed": seed,
                   "budget": budget, "threshold": threshold, "success_rate": success, "return_mean": ret,
                   "wall_time_s": wall, "fps": model.num_timesteps / wall, "frames_to_threshold": evaluator.reached}
            print(json.dumps(row), flush=True)
            results = [r for r in results if not (r["task"] == task and r["seed"] == seed and r["trainer"] == row["trainer"])]
            results.append(row)
            out.write_text(json.dumps(results, indent=1))


def report() -> None:
    rows = []
    for name in ("learning_native.json", "learning_sb3.json"):
        path = RESULTS / name
        if path.exists():
            rows += json.loads(path.read_text())
    print("| task | trainer | budget (frames) | seed | eval success | eval return | frames to threshold "
          "| wall time (s) | frames/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(rows, key=lambda r: (r["task"], r["trainer"], r["seed"])):
        reach = f"{r['frames_to_threshold']:,} (>= {r['threshold']})" if r["frames_to_threshold"] else "—"
        print(f"| {r['task']} | {r['trainer']} | {r['budget']:,} | {r['seed']} | {r['success_rate']:.3f} | "
              f"{r['return_mean']:.3f} | {reach} | {r['wall_time_s']:.0f} | {r['fps']:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description="PPO learning benchmark on MiniGrid DoorKey")
    parser.add_argument("what", choices=["native", "sb3", "report"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tasks", nargs="+", default=list(NATIVE_TASKS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    RESULTS.mkdir(exist_ok=True)
    if args.what == "native":
        run_native(args.seeds, args.tasks, RESULTS / "learning_native.json")
    elif args.what == "sb3":
        run_sb3(args.seeds, RESULTS / "learning_sb3.json")
    report()


if __name__ == "__main__":
    main()
