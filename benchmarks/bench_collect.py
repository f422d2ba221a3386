"""Dataset collection throughput: ``rlcore.data.collect`` with a random policy on the batched MiniGrid.

    python benchmarks/bench_collect.py                                   # 1M transitions, DoorKey-8x8
    python benchmarks/bench_collect.py --transitions 1000000 --batch 256 1024 4096 --threads 1 2 --reps 3

For each (threads, batch) the script collects ``--transitions`` transitions (``n_steps``) into a
``TrajectoryDataset`` (observations, next observations, actions, rewards, flags, episode
bookkeeping; ``--record-state`` adds privileged state) and reports transitions per second, the
median over ``--reps`` repetitions taken in alternating order (every configuration once, then again),
with ``uptime`` before and after. The issue's target is 200k transitions/s on 2 cores. Pass
``--json PATH`` to write the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import envs.minigrid as mg  # noqa: E402
from rlcore.data import collect, random_policy  # noqa: E402


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def one(env_id: str, batch: int, transitions: int, record_state: bool, seed: int) -> tuple[float, int]:
    env = mg.make(env_id, num_envs=batch, seed=seed)
    policy = random_policy(env.single_action_space, batch, env.device, torch.Generator().manual_seed(seed))
    t0 = time.perf_counter()
    data = collect(env, policy, n_steps=transitions, seed=seed, record_state=record_state)
    elapsed = time.perf_counter() - t0
    return len(data) / elapsed, len(data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    p.add_argument("--transitions", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--record-state", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    configs = [(t, b) for t in args.threads for b in args.batch]
    rates: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
    before = uptime()
    one(args.env, args.batch[0], min(args.transitions, 50_000), args.record_state, 0)  # warm-up
    for rep in range(args.reps):
        for threads, batch in configs:
            torch.set_num_threads(threads)
            rate, n = one(args.env, batch, args.transitions, args.record_state, rep)
            rates[(threads, batch)].append(rate)
            print(f"rep {rep} threads {threads} batch {batch}: {n:,} transitions, {rate:,.0f}/s", flush=True)
    after = uptime()
    print(f"\n{args.env}, {args.transitions:,} transitions per collection, random policy"
          f"{', privileged state recorded' if args.record_state else ''}; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}")
    print(f"uptime before: {before}\nuptime after:  {after}\n")
    print("| threads | envs | transitions/s (median) | runs |")
    print("|---:|---:|---:|---|")
    rows = []
    for threads, batch in configs:
        r = rates[(threads, batch)]
        print(f"| {threads} | {batch} | {statistics.median(r):,.0f} | {', '.join(f'{x:,.0f}' for x in r)} |")
        rows.append({"threads": threads, "envs": batch, "median": statistics.median(r), "runs": r})
    if args.json:
        args.json.write_text(json.dumps({"env": args.env, "transitions": args.transitions, "uptime_before": before,
                                         "uptime_after": after, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
