"""Training throughput: the library's native PPO vs stable-baselines3 PPO, measured in one run.

All contenders train on the same MiniGrid task with the same policy network (separate actor and
critic MLPs, 64x64, tanh, over the flattened 7x7x3 symbolic image), the same number of envs and the
same rollout/update shape (n_steps, 4 epochs, 4 minibatches). Contenders:

* ``native``: algorithms.ppo.PPO on the library's batched torch MiniGrid (envs.minigrid);
* ``sb3+farama``: SB3 PPO (MlpPolicy) on Farama MiniGrid envs in SB3's DummyVecEnv — the usual
  way SB3 users train on MiniGrid;
* ``sb3+bridge``: SB3 PPO on the library's batched MiniGrid through rlcore.adapters.sb3.SB3VecEnv.

Training frames/s count env frames over the whole ``learn`` call (rollouts and updates); collection
frames/s count them over rollout collection alone (policy inference, env steps, storage), the part
where the libraries differ — the gradient updates are the same arithmetic in both.
Contenders run alternately, ``--repeats`` times each, and the median is reported, so machine noise
hits all of them alike.

    python benchmarks/bench_ppo_vs_sb3.py --env MiniGrid-DoorKey-8x8-v0 --num-envs 16 64 256
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch


class _Timed:
    """Wraps a bound method and accumulates the seconds spent in it."""

    def __init__(self, fn) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0


def _measure(model, learn, collect_attr: str, timesteps: int) -> tuple[float, float]:
    """(training frames/s over the whole learn call, collection frames/s over rollout collection only)."""
    timed = _Timed(getattr(model, collect_attr))
    setattr(model, collect_attr, timed)
    t0 = time.perf_counter()
    learn(timesteps)
    total = time.perf_counter() - t0
    return model.num_timesteps / total, model.num_timesteps / timed.seconds


def native_fps(env_id: str, num_envs: int, n_steps: int, timesteps: int, seed: int) -> tuple[float, float]:
    import envs.minigrid as mg
    from algorithms.ppo import PPO

    env = mg.make(env_id, num_envs=num_envs, seed=seed)
    model = PPO(env, n_steps=n_steps, n_epochs=4, n_minibatches=4, seed=seed,
                policy_kwargs={"encoder": "mlp", "hidden_sizes": [64, 64], "activation": "tanh"})
    model.learn(n_steps * num_envs)  # warm-up iteration (allocations, first-call overheads)
    return _measure(model, lambda t: model.learn(t, reset_num_timesteps=True), "_collect_rollout", timesteps)


class _FlatImage(gym.ObservationWrapper):
    """Farama MiniGrid obs -> flattened 147-d image (the same input the native MLP policy sees)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = gym.spaces.Box(0, 255, (147,), np.uint8)

    def observation(self, obs):
        return obs["image"].reshape(-1)


def _sb3_model(vec_env, n_steps: int, seed: int):
    from stable_baselines3 import PPO as SB3PPO

    batch = n_steps * vec_env.num_envs
    return SB3PPO("MlpPolicy", vec_env, n_steps=n_steps, batch_size=batch // 4, n_epochs=4, learning_rate=2.5e-4,
                  ent_coef=0.01, clip_range_vf=0.2, seed=seed, device="cpu", verbose=0,
                  policy_kwargs={"net_arch": dict(pi=[64, 64], vf=[64, 64])})


def sb3_farama_fps(env_id: str, num_envs: int, n_steps: int, timesteps: int, seed: int) -> tuple[float, float]:
    import minigrid  # noqa: F401  (registers the ids)
    from stable_baselines3.common.env_util import make_vec_env

    vec_env = make_vec_env(env_id, n_envs=num_envs, seed=seed, wrapper_class=_FlatImage)
    model = _sb3_model(vec_env, n_steps, seed)
    model.learn(n_steps * num_envs)
    return _measure(model, lambda t: model.learn(t, reset_num_timesteps=True), "collect_rollouts", timesteps)


def sb3_bridge_fps(env_id: str, num_envs: int, n_steps: int, timesteps: int, seed: int) -> tuple[float, float]:
    import envs.minigrid as mg
    from rlcore.adapters.sb3 import SB3VecEnv
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class FlatImage(VecEnvWrapper):
        def __init__(self, venv):
            super().__init__(venv, observation_space=gym.spaces.Box(0, 255, (147,), np.uint8))

        def reset(self):
            return self.venv.reset()["image"].reshape(self.num_envs, -1)

        def step_wait(self):
            obs, rew, done, infos = self.venv.step_wait()
            for info in infos:
                if "terminal_observation" in info:
                    info["terminal_observation"] = info["terminal_observation"]["image"].reshape(-1)
            return obs["image"].reshape(self.num_envs, -1), rew, done, infos

    vec_env = FlatImage(SB3VecEnv(mg.make(env_id, num_envs=num_envs, seed=seed)))
    model = _sb3_model(vec_env, n_steps, seed)
    model.learn(n_steps * num_envs)
    return _measure(model, lambda t: model.learn(t, reset_num_timesteps=True), "collect_rollouts", timesteps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--n-steps", type=int, default=128)
    parser.add_argument("--native-timesteps", type=int, default=262_144)
    parser.add_argument("--sb3-timesteps", type=int, default=32_768)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    print(f"{args.env}, n_steps {args.n_steps}, MLP 64x64 actor and critic, 4 epochs x 4 minibatches, "
          f"torch threads {args.threads}, median of {args.repeats} alternating repeats\n")
    print("| envs | training frames/s: native PPO | SB3 + Farama | SB3 + bridge | native / SB3+Farama | native / SB3+bridge "
          "| collection frames/s: native | SB3 + Farama | SB3 + bridge | native / SB3+Farama |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = ("native", "sb3+farama", "sb3+bridge")
    fns = (native_fps, sb3_farama_fps, sb3_bridge_fps)
    for n in args.num_envs:
        train: dict[str, list[float]] = {k: [] for k in names}
        collect: dict[str, list[float]] = {k: [] for k in names}
        for r in range(args.repeats):
            for name, fn in zip(names, fns):
                steps = args.native_timesteps if name == "native" else args.sb3_timesteps
                t, c = fn(args.env, n, args.n_steps, steps, r)
                train[name].append(t)
                collect[name].append(c)
        tm = {k: statistics.median(v) for k, v in train.items()}
        cm = {k: statistics.median(v) for k, v in collect.items()}
        print(f"| {n} | {tm['native']:,.0f} | {tm['sb3+farama']:,.0f} | {tm['sb3+bridge']:,.0f} | "
              f"{tm['native'] / tm['sb3+farama']:.1f}x | {tm['native'] / tm['sb3+bridge']:.1f}x | "
              f"{cm['native']:,.0f} | {cm['sb3+farama']:,.0f} | {cm['sb3+bridge']:,.0f} | "
              f"{cm['native'] / cm['sb3+farama']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
