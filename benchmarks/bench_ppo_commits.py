"""Native PPO training throughput of two source trees (e.g. this commit and an earlier one), in one run.

Each repeat trains the native PPO of ``bench_ppo_vs_sb3.native_fps`` (the MLP 64x64 actor and critic,
128 steps x N envs, 4 epochs x 4 minibatches) once per tree, alternating the order, each in a fresh
subprocess that imports only that tree's packages. The medians and their ratio are printed with the
machine's load (``uptime``) before and after.

    git worktree add /tmp/rlreward-base <earlier commit>
    python benchmarks/bench_ppo_commits.py --baseline /tmp/rlreward-base --num-envs 1024 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import json, sys, torch
sys.path.insert(0, {bench!r})
torch.set_num_threads({threads})
from bench_ppo_vs_sb3 import native_fps
train, collect = native_fps({env!r}, {num_envs}, {n_steps}, {timesteps}, {seed})
print(json.dumps({{"train": train, "collect": collect}}))
"""


def run_tree(tree: Path, env: str, num_envs: int, n_steps: int, timesteps: int, seed: int, threads: int) -> dict:
    code = _CHILD.format(bench=str(tree / "benchmarks"), threads=threads, env=env, num_envs=num_envs, n_steps=n_steps,
                         timesteps=timesteps, seed=seed)
    environ = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=environ, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="source tree of the earlier commit")
    parser.add_argument("--candidate", type=Path, default=ROOT, help="source tree to compare (default: this one)")
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--n-steps", type=int, default=128)
    parser.add_argument("--timesteps", type=int, default=524_288)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    results: dict[str, list[float]] = {"baseline": [], "candidate": []}
    for r in range(args.repeats):
        order = ("baseline", "candidate") if r % 2 == 0 else ("candidate", "baseline")
        for name in order:
            tree = args.baseline if name == "baseline" else args.candidate
            fps = run_tree(tree, args.env, args.num_envs, args.n_steps, args.timesteps, r, args.threads)["train"]
            results[name].append(fps)
            print(f"repeat {r} {name:9s} {fps:,.0f} frames/s", flush=True)
    base, cand = statistics.median(results["baseline"]), statistics.median(results["candidate"])
    print("load after:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"\n{args.env}, {args.num_envs} envs, torch threads {args.threads}, median of {args.repeats}: "
          f"baseline {base:,.0f} frames/s, candidate {cand:,.0f} frames/s, candidate / baseline {cand / base:.3f}")


if __name__ == "__main__":
    main()
