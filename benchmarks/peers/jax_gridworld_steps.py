"""Random-action steps/s of the JAX MiniGrid peers (XLand-MiniGrid, NAVIX) on CPU.

Runs in the separate benchmark environment (``.bench-venv``: ``pip install jax xminigrid navix``),
never in the library's own; ``benchmarks/bench_minigrid_env.py --peers`` calls it and prints its
numbers beside the library's. Each measurement jit-compiles a ``lax.scan`` of ``--steps`` vmapped
steps with auto-reset over ``B`` envs, runs it once to compile, then times ``--repeats`` runs.

    .bench-venv/bin/python benchmarks/peers/jax_gridworld_steps.py --batch 1024 4096 --json
"""

from __future__ import annotations

import argparse
import json
import time

import jax


def _time(fn, key, repeats: int) -> float:
    jax.block_until_ready(fn(key))  # compile + warm up
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(jax.random.fold_in(key, r + 1)))
        best = min(best, time.perf_counter() - t0)
    return best


def xminigrid_sps(env_id: str, batch: int, steps: int, repeats: int) -> float:
    import xminigrid
    from xminigrid.wrappers import GymAutoResetWrapper

    env, params = xminigrid.make(env_id)
    env = GymAutoResetWrapper(env)

    @jax.jit
    def run(key):
        keys = jax.random.split(key, batch)
        timestep = jax.vmap(env.reset, in_axes=(None, 0))(params, keys)
        actions = jax.random.randint(key, (steps, batch), 0, env.num_actions(params))

        def body(ts, a):
            ts = jax.vmap(env.step, in_axes=(None, 0, 0))(params, ts, a)
            return ts, ts.reward.sum()

        _, rewards = jax.lax.scan(body, timestep, actions)
        return rewards.sum()

    return batch * steps / _time(run, jax.random.key(0), repeats)


def navix_sps(env_id: str, batch: int, steps: int, repeats: int) -> float:
    import navix as nx

    env = nx.make(env_id)

    @jax.jit
    def run(key):
        keys = jax.random.split(key, batch)
        timestep = jax.vmap(env.reset)(keys)
        actions = jax.random.randint(key, (steps, batch), 0, len(env.action_set))

        def body(ts, a):
            ts = jax.vmap(env.step)(ts, a)
            return ts, ts.reward.sum()

        _, rewards = jax.lax.scan(body, timestep, actions)
        return rewards.sum()

    return batch * steps / _time(run, jax.random.key(0), repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, nargs="+", default=[1, 64, 1024, 4096, 16384])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--xminigrid-id", default="MiniGrid-DoorKey-8x8")
    p.add_argument("--navix-id", default="Navix-DoorKey-8x8-v0")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args()
    out: dict[str, dict[str, float]] = {}
    for name, fn, env_id in (("XLand-MiniGrid", xminigrid_sps, args.xminigrid_id), ("NAVIX", navix_sps, args.navix_id)):
        out[name] = {}
        for b in args.batch:
            try:
                out[name][str(b)] = fn(env_id, b, args.steps, args.repeats)
            except Exception as exc:  # a peer that fails to build is reported, not fatal
                out[name][str(b)] = float("nan")
                out.setdefault("errors", {})[f"{name} B={b}"] = repr(exc)[:300]
    out["versions"] = {"jax": jax.__version__, "devices": str(jax.devices())}
    if args.json:
        print(json.dumps(out))
    else:
        for name in ("XLand-MiniGrid", "NAVIX"):
            print(name, {b: f"{v:,.0f}" for b, v in out[name].items()})
        print(out.get("errors", ""))


if __name__ == "__main__":
    main()
