"""Per-step cost of SB3VecEnv against SB3's DummyVecEnv on CartPole-v1.

Columns (env-steps per second = vector steps/s x N, higher is better; ratio = column / DummyVecEnv):

* ``DummyVecEnv``: SB3's DummyVecEnv over N ``gymnasium.make("CartPole-v1")`` envs (the baseline).
* ``bridge/gym``: ``SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", N))`` -- the same gymnasium envs
  behind the batched contract (SyncVectorEnv with same-step auto-reset + tensor conversion +
  the bridge); isolates the cost of the adapters around identical simulators.
* ``bridge/torch``: ``SB3VecEnv(TorchCartPole(N))`` -- a pure-torch batched CartPole defined below
  (gymnasium's dynamics, Euler integration, 500-step limit), i.e. a cheap BatchedEnv, so the column
  is dominated by the bridge's own per-step overhead (action H2D copy, packing, one D2H copy,
  info dicts for finished envs).
* ``bridge/torch shared``: as ``bridge/torch`` with ``shared_empty_info=True`` (one shared empty
  info dict for unfinished envs instead of N fresh ones).
* ``info list``: microseconds per step spent building the list of N fresh empty info dicts, the
  only O(N) Python work the bridge does per step.

Run::

    .venv/bin/python benchmarks/bench_sb3_bridge.py              # N in {8, 64, 256}, CPU
    .venv/bin/python benchmarks/bench_sb3_bridge.py --device cuda --steps 500
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rlcore.adapters.gymnasium import GymnasiumBatchedEnv
from rlcore.adapters.sb3 import SB3VecEnv
from rlcore.env import BatchedEnv


class TorchCartPole(BatchedEnv):
    """Batched CartPole-v1 in torch (gymnasium's constants and Euler update).

    obs float32[N, 4] = (x [m], x_dot [m/s], theta [rad], theta_dot [rad/s]); actions int64[N]
    (0 push left, 1 push right, 10 N); reward 1 per step; terminated when |x| > 2.4 m or
    |theta| > 12 deg; truncated after 500 steps.
    """

    env_id = "CartPole-v1"

    def __init__(self, num_envs: int, device: str | torch.device = "cpu", max_steps: int = 500) -> None:
        self.num_envs, self.device, self.max_steps = num_envs, torch.device(device), max_steps
        high = np.array([4.8, np.inf, 0.418879, np.inf], dtype=np.float32)
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.gen = torch.Generator(device=self.device)
        self.state = torch.zeros(num_envs, 4, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.int64, device=self.device)

    def _sample(self, n: int) -> torch.Tensor:
        return torch.rand(n, 4, generator=self.gen, device=self.device) * 0.1 - 0.05

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.gen.manual_seed(seed)
        self.state = self._sample(self.num_envs)
        self.t.zero_()
        return self.state.clone(), {}

    def step(self, actions: torch.Tensor):
        a = self.check_actions(actions)
        x, x_dot, th, th_dot = self.state.unbind(1)
        force = torch.where(a == 1, 10.0, -10.0)
        cos, sin = torch.cos(th), torch.sin(th)
        temp = (force + 0.05 * th_dot**2 * sin) / 1.1
        th_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos**2 / 1.1))
        x_acc = temp - 0.05 * th_acc * cos / 1.1
        tau = 0.02
        final = torch.stack([x + tau * x_dot, x_dot + tau * x_acc, th + tau * th_dot, th_dot + tau * th_acc], 1)
        self.t += 1
        term = (final[:, 0].abs() > 2.4) | (final[:, 2].abs() > 12 * 2 * math.pi / 360)
        trunc = (self.t >= self.max_steps) & ~term
        done = term | trunc
        self.state = torch.where(done[:, None], self._sample(self.num_envs), final)
        self.t = torch.where(done, 0, self.t)
        reward = torch.ones(self.num_envs, device=self.device)
        return self.state.clone(), reward, term, trunc, {"final_obs": final, "success": term & False}


def steps_per_second(venv: VecEnv, steps: int, warmup: int = 20, seed: int = 0) -> float:
    """Env-steps per second of ``venv.step`` with random actions (actions pre-drawn)."""
    n = venv.num_envs
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 2, size=(steps + warmup, n))
    venv.seed(seed)
    venv.reset()
    for k in range(warmup):
        venv.step(actions[k])
    if isinstance(venv, SB3VecEnv) and venv.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(warmup, warmup + steps):
        venv.step(actions[k])
    return n * steps / (time.perf_counter() - start)


def info_list_us(n: int, reps: int = 2000) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        _ = [{} for _ in range(n)]
    return (time.perf_counter() - start) / reps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--steps", type=int, default=300, help="timed vector steps per measurement")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"CartPole-v1, {args.steps} timed steps, bridge device={args.device}, torch threads={args.threads}\n")
    print(
        "| N | DummyVecEnv (steps/s) | bridge/gym (steps/s) | ratio | bridge/torch (steps/s) | ratio "
        "| bridge/torch shared (steps/s) | ratio | info list (us/step) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        dummy = DummyVecEnv([lambda: gym.make("CartPole-v1") for _ in range(n)])
        bgym = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=n, device=args.device))
        btorch = SB3VecEnv(TorchCartPole(n, device=args.device))
        bshared = SB3VecEnv(TorchCartPole(n, device=args.device), shared_empty_info=True)
        d = steps_per_second(dummy, args.steps)
        g = steps_per_second(bgym, args.steps)
        t = steps_per_second(btorch, args.steps)
        sh = steps_per_second(bshared, args.steps)
        print(
            f"| {n} | {d:,.0f} | {g:,.0f} | {g / d:.2f} | {t:,.0f} | {t / d:.2f} | {sh:,.0f} | {sh / d:.2f} "
            f"| {info_list_us(n):.1f} |"
        )
        for v in (dummy, bgym, btorch, bshared):
            v.close()


if __name__ == "__main__":
    main()
