"""Behaviour cloning from a PPO expert on MiniGrid, through the apps a user runs.

1. trains the expert: ``python -m rlcore.train experiment=demo`` (PPO, DoorKey-5x5, 300k frames),
   unless ``--expert`` names an existing ``final_model.pt``;
2. records ``--episodes`` expert episodes: ``python -m rlcore.collect ...``;
3. trains BC on them for each seed: ``python -m rlcore.train algo=bc dataset.path=...``;

and prints the expert's and BC's evaluation success and return (64 fixed-seed episodes each), the
gradient steps and wall time, with the machine's load.

    python benchmarks/bench_bc.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="MiniGrid-DoorKey-5x5-v0")
    parser.add_argument("--expert", type=Path, default=None, help="an existing expert checkpoint (skips step 1)")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_bc")
    args = parser.parse_args()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    expert = args.expert
    if expert is None:
        _run(["rlcore.train", "experiment=demo", f"env.id={args.env}", f"hydra.run.dir={args.out / 'expert'}",
              "run_name=bench_bc_expert", "progress_bar=false"])
        expert = args.out / "expert" / "final_model.pt"
        expert_summary = json.loads((args.out / "expert" / "summary.json").read_text())
        print(f"expert: PPO, {expert_summary['total_timesteps']} frames, eval success "
              f"{expert_summary['eval_success_rate']:.2f}, return {expert_summary['eval_return_mean']:.3f}")
    data = args.out / f"demos-{args.episodes}ep.safetensors"
    _run(["rlcore.collect", f"env.id={args.env}", f"policy.path={expert}", f"n_episodes={args.episodes}",
          f"out={data}", "progress_bar=false"])
    from rlcore.data import load_dataset

    demos = load_dataset(data)
    print(f"dataset: {demos.num_episodes} episodes, {len(demos)} transitions, return mean "
          f"{float(demos.episode_return.mean()):.3f}, success {float(demos.episode_success.float().mean()):.2f}")
    print("\n| seed | BC eval success | BC eval return | gradient steps | wall time (s) |\n|---:|---:|---:|---:|---:|")
    for seed in args.seeds:
        run = args.out / f"bc-seed{seed}"
        _run(["rlcore.train", "algo=bc", f"dataset.path={data}", f"env.id={args.env}", f"seed={seed}",
              f"hydra.run.dir={run}", f"run_name=bench_bc_seed{seed}", "overwrite=true", "progress_bar=false"])
        s = json.loads((run / "summary.json").read_text())
        print(f"| {seed} | {s['eval_success_rate']:.2f} | {s['eval_return_mean']:.3f} | {s['gradient_steps']} | "
              f"{s['wall_time_s']:.1f} |", flush=True)
    print(f"\nload before: {load}")
    print("load after: ", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
