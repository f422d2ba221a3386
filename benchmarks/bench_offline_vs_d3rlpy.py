"""Offline learners side by side with d3rlpy: gradient steps per second on the same dataset.

    python benchmarks/bench_offline_vs_d3rlpy.py                       # IQL, Hopper-v5 random data, 1 thread
    python benchmarks/bench_offline_vs_d3rlpy.py --algo iql --steps 3000 --reps 3 --threads 1 2

The dataset is made here (a random policy on Hopper-v5 through the gymnasium adapter, ``--transitions``
transitions; or ``--data`` a dataset file from ``rlcore.collect``) and exported as D4RL-style arrays for
d3rlpy. Both sides use the papers' defaults, which are also both libraries' defaults: 256x256 ReLU
networks, batch 256, lr 3e-4 (IQL: expectile 0.7, inverse temperature 3, weights clipped at 100). Each
repetition times ours, then d3rlpy (``benchmarks/peers/d3rlpy_steps.py`` in the separate environment
``.bench-d3rlpy``, created once with ``python3 -m venv .bench-d3rlpy && .bench-d3rlpy/bin/pip install
torch==2.13.0 d3rlpy==2.8.1``), each after a warm-up, with the same number of torch threads; the ratio
is taken within the repetition. ``uptime`` is printed before and after. Scores are not compared here:
that needs full-length training (``benchmarks/`` offline score runs).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

PEER_PY = ROOT / ".bench-d3rlpy" / "bin" / "python"


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def make_dataset(env_id: str, transitions: int, seed: int):
    from rlcore.data import collect, random_policy
    from rlcore.make_env import make_env

    env = make_env({"id": env_id, "num_envs": 16, "backend": "gymnasium"}, "cpu", seed=seed)
    policy = random_policy(env.single_action_space, env.num_envs, env.device, torch.Generator().manual_seed(seed))
    data = collect(env, policy, n_steps=transitions, seed=seed)
    env.close()
    return data


def export_arrays(data, path: Path) -> None:
    np.savez(path, observations=data.obs.numpy(), actions=data.action.numpy(), rewards=data.reward.numpy(),
             terminals=data.terminated.numpy(), timeouts=data.truncated.numpy())


def ours_steps_per_s(algo: str, data, steps: int, warmup: int, threads: int, seed: int) -> float:
    import importlib

    from algorithms.offline_base import SpacesOnly
    from rlcore.spaces import space_from_dict

    torch.set_num_threads(threads)
    module, cls = {"iql": ("algorithms.iql", "IQL"), "cql": ("algorithms.cql", "CQL"),
                   "td3bc": ("algorithms.td3bc", "TD3BC")}[algo]
    learner_cls = getattr(importlib.import_module(module), cls)
    env = SpacesOnly(space_from_dict(data.metadata["observation_space"]), space_from_dict(data.metadata["action_space"]),
                     torch.device("cpu"))
    model = learner_cls(env, seed=seed, batch_size=256, log_every=min(1000, steps))
    model.fit(data, warmup)
    t0 = time.perf_counter()
    model.fit(data, warmup + steps, reset_num_timesteps=False)
    return steps / (time.perf_counter() - t0)


def peer_steps_per_s(algo: str, npz: Path, steps: int, warmup: int, threads: int, seed: int) -> float:
    out = subprocess.run([str(PEER_PY), str(ROOT / "benchmarks" / "peers" / "d3rlpy_steps.py"), "--data", str(npz),
                          "--algo", algo, "--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads),
                          "--seed", str(seed)], capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"d3rlpy peer failed:\n{out.stderr[-3000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["steps_per_s"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", default="iql", choices=["iql", "cql", "td3bc"])
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--transitions", type=int, default=100_000)
    p.add_argument("--data", type=Path, help="a dataset file (rlcore.collect) instead of the random-policy data")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    if not PEER_PY.exists():
        raise SystemExit(f"{PEER_PY} is missing; create the peer environment first (see this script's docstring)")
    from rlcore.data import load_dataset

    data = load_dataset(args.data) if args.data else make_dataset(args.env, args.transitions, 0)
    before = uptime()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        export_arrays(data, npz)
        for threads in args.threads:
            for rep in range(args.reps):
                ours = ours_steps_per_s(args.algo, data, args.steps, args.warmup, threads, rep)
                peer = peer_steps_per_s(args.algo, npz, args.steps, args.warmup, threads, rep)
                rows.append({"threads": threads, "rep": rep, "ours": ours, "d3rlpy": peer, "ratio": ours / peer})
                print(f"threads {threads} rep {rep}: ours {ours:,.0f} steps/s, d3rlpy {peer:,.0f} steps/s, "
                      f"ratio {ours / peer:.2f}", flush=True)
    after = uptime()
    source = args.data if args.data else args.env
    print(f"\n{args.algo} on {source} ({len(data):,} transitions), batch 256, "
          f"{args.steps} timed steps after {args.warmup}; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}")
    print(f"uptime before: {before}\nuptime after:  {after}\n")
    print("| threads | ours (steps/s, median) | d3rlpy (steps/s, median) | ratio per rep | median ratio |")
    print("|---:|---:|---:|---|---:|")
    for threads in args.threads:
        r = [x for x in rows if x["threads"] == threads]
        ratios = ", ".join(f"{x['ratio']:.2f}" for x in r)
        print(f"| {threads} | {statistics.median(x['ours'] for x in r):,.0f} | {statistics.median(x['d3rlpy'] for x in r):,.0f} "
              f"| {ratios} | {statistics.median(x['ratio'] for x in r):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"algo": args.algo, "rows": rows, "uptime_before": before, "uptime_after": after},
                                        indent=2))


if __name__ == "__main__":
    main()
