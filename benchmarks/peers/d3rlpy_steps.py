"""Gradient steps per second of d3rlpy's offline algorithms on a dataset exported as arrays.

Runs in the separate benchmark environment ``.bench-d3rlpy`` (``python3 -m venv .bench-d3rlpy &&
.bench-d3rlpy/bin/pip install torch==2.13.0 d3rlpy==2.8.1``; d3rlpy pins gymnasium 1.0, so it never
joins the library's environment). ``benchmarks/bench_offline_vs_d3rlpy.py`` calls it between its own
measurements and prints both.

    .bench-d3rlpy/bin/python benchmarks/peers/d3rlpy_steps.py --data data.npz --algo iql --steps 2000 --threads 1

The algorithm is built with d3rlpy's defaults, which for IQL, CQL and TD3+BC are the papers' (256x256
MLPs, batch 256, lr 3e-4, ...); ``fit`` runs ``--warmup`` steps first (network construction, first
allocations), then ``--steps`` timed steps, logging to nothing. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def build(algo: str):
    import d3rlpy

    if algo == "iql":
        return d3rlpy.algos.IQLConfig(batch_size=256).create(device="cpu:0")
    if algo == "cql":
        return d3rlpy.algos.CQLConfig(batch_size=256, conservative_weight=5.0, n_action_samples=10).create(device="cpu:0")
    if algo == "td3bc":
        return d3rlpy.algos.TD3PlusBCConfig(batch_size=256, alpha=2.5).create(device="cpu:0")
    raise SystemExit(f"unknown algo {algo!r}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--algo", default="iql")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import d3rlpy
    from d3rlpy.logging import NoopAdapterFactory

    d3rlpy.seed(args.seed)
    arrays = np.load(args.data)
    dataset = d3rlpy.dataset.MDPDataset(observations=arrays["observations"], actions=arrays["actions"],
                                        rewards=arrays["rewards"], terminals=arrays["terminals"].astype(np.float32),
                                        timeouts=arrays["timeouts"].astype(np.float32))
    algo = build(args.algo)
    quiet = dict(logger_adapter=NoopAdapterFactory(), show_progress=False, save_interval=10**9)
    algo.fit(dataset, n_steps=args.warmup, n_steps_per_epoch=args.warmup, **quiet)
    t0 = time.perf_counter()
    algo.fit(dataset, n_steps=args.steps, n_steps_per_epoch=args.steps, **quiet)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"peer": f"d3rlpy {d3rlpy.__version__}", "algo": args.algo, "steps": args.steps,
                      "steps_per_s": args.steps / elapsed, "threads": args.threads}))


if __name__ == "__main__":
    main()
