"""Random-action throughput of the batched MiniGrid vs Farama MiniGrid (single env), same run.

    python benchmarks/bench_minigrid_env.py                       # DoorKey-8x8, CPU
    python benchmarks/bench_minigrid_env.py --ids MiniGrid-DoorKey-8x8-v0 MiniGrid-Empty-8x8-v0 \
        --batch 1 64 1024 4096 16384 --seconds 2 --device cuda

Prints a markdown table: env steps per second (summed over the batch), the ratio to one Farama
env stepped by ``gymnasium.make`` with random actions, and the bytes of state tensors per env.

With ``--peers``, the JAX peers (XLand-MiniGrid, NAVIX) are measured on DoorKey-8x8 in the same run
through ``benchmarks/peers/jax_gridworld_steps.py``, in the separate environment ``.bench-venv``
(create it once: ``python3 -m venv .bench-venv && .bench-venv/bin/pip install jax xminigrid navix``),
so they never become dependencies of the library.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import minigrid  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402

import envs.minigrid as mg  # noqa: E402


def bench_farama(env_id: str, seconds: float) -> float:
    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = rng.integers(0, 7, size=100_000)
    steps, t0 = 0, time.perf_counter()
    while True:
        for _ in range(200):
            _, _, term, trunc, _ = env.step(int(acts[steps % len(acts)]))
            steps += 1
            if term or trunc:
                env.reset()
        if time.perf_counter() - t0 > seconds:
            break
    return steps / (time.perf_counter() - t0)


def bench_batched(env_id: str, batch: int, device: str, seconds: float, reset_mode: str) -> tuple[float, int]:
    env = mg.make(env_id, num_envs=batch, device=device, seed=0, reset_mode=reset_mode)
    env.reset(seed=0)
    g = torch.Generator(device=device).manual_seed(0)
    pool = torch.randint(0, 7, (64, batch), generator=g, device=device)
    for i in range(3):  # warm-up
        env.step(pool[i])
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    steps, t0 = 0, time.perf_counter()
    while True:
        for i in range(10):
            env.step(pool[(steps + i) % 64])
        steps += 10
        sync()
        if time.perf_counter() - t0 > seconds:
            break
    return steps * batch / (time.perf_counter() - t0), env.state_nbytes_per_env()


ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".bench-venv" / "bin" / "python"


def bench_peers(batches: list[int], threads: int) -> dict:
    """Steps/s of XLand-MiniGrid and NAVIX on DoorKey-8x8 (random actions, CPU), keyed by batch size."""
    if not PEER_PYTHON.exists():
        raise SystemExit(f"--peers needs {PEER_PYTHON}: python3 -m venv .bench-venv && "
                         ".bench-venv/bin/pip install jax xminigrid navix")
    env = None
    if threads:
        import os
        env = {**os.environ, "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}"}
    out = subprocess.run([str(PEER_PYTHON), str(ROOT / "benchmarks" / "peers" / "jax_gridworld_steps.py"), "--json",
                          "--batch", *map(str, batches)], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ids", nargs="+", default=["MiniGrid-DoorKey-8x8-v0"])
    p.add_argument("--batch", nargs="+", type=int, default=[1, 64, 1024, 4096, 16384])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=float, default=1.5, help="time budget per measurement")
    p.add_argument("--reset-mode", nargs="+", default=["auto"], choices=["auto", "where", "index"],
                   help="batched auto-reset strategies to measure (see BatchedMiniGrid)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--peers", action="store_true", help="also measure XLand-MiniGrid and NAVIX (DoorKey-8x8)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# batched MiniGrid vs Farama MiniGrid — device={args.device}, torch {torch.__version__}, "
          f"threads={torch.get_num_threads()}, {platform.processor() or platform.machine()}\n")
    print("| env id | B | reset mode | steps/s (batched) | Farama steps/s (1 env) | ratio | state bytes/env |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for env_id in args.ids:
        ref = bench_farama(env_id, args.seconds)
        for b in args.batch:
            for mode in args.reset_mode:
                sps, nbytes = bench_batched(env_id, b, args.device, args.seconds, mode)
                print(f"| {env_id} | {b} | {mode} | {sps:,.0f} | {ref:,.0f} | {sps / ref:,.1f}x | {nbytes} |", flush=True)
    if args.peers:
        peers = bench_peers(args.batch, args.threads)
        ours = {b: bench_batched("MiniGrid-DoorKey-8x8-v0", b, args.device, args.seconds, "auto")[0] for b in args.batch}
        print(f"\n# DoorKey-8x8 vs JAX peers on CPU ({peers['versions']}), measured back to back\n")
        print("| B | this library (torch) | XLand-MiniGrid (JAX) | NAVIX (JAX) | library / XLand | library / NAVIX |")
        print("|---:|---:|---:|---:|---:|---:|")
        for b in args.batch:
            x, n = peers["XLand-MiniGrid"].get(str(b), math.nan), peers["NAVIX"].get(str(b), math.nan)
            print(f"| {b} | {ours[b]:,.0f} | {x:,.0f} | {n:,.0f} | {ours[b] / x:.2f}x | {ours[b] / n:.2f}x |")
        if peers.get("errors"):
            print("\npeer errors:", peers["errors"])


if __name__ == "__main__":
    main()
