"""Differential tests: batched MiniGrid vs Farama MiniGrid, step for step."""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401  (registers the Farama ids)
import numpy as np
import pytest
import torch

import envs.minigrid as mg

# biased toward object interaction so keys, doors and boxes get exercised
ACTION_P = np.array([0.12, 0.12, 0.30, 0.14, 0.10, 0.17, 0.05])

FAST_IDS = [
    "MiniGrid-Empty-5x5-v0",
    "MiniGrid-Empty-Random-6x6-v0",
    "MiniGrid-Empty-16x16-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-DoorKey-16x16-v0",
]
FAST_IDS += [
    "MiniGrid-FourRooms-v0",
    "MiniGrid-LavaGapS5-v0",
    "MiniGrid-LavaCrossingS9N1-v0",
    "MiniGrid-SimpleCrossingS11N5-v0",
    "MiniGrid-Unlock-v0",
    "MiniGrid-UnlockPickup-v0",
    "MiniGrid-BlockedUnlockPickup-v0",
    "MiniGrid-KeyCorridorS3R1-v0",
    "MiniGrid-KeyCorridorS4R3-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
    "MiniGrid-MultiRoom-N6-v0",
    "MiniGrid-ObstructedMaze-1Dlhb-v0",
    "MiniGrid-ObstructedMaze-2Dl-v0",
    "MiniGrid-ObstructedMaze-Full-v1",
    "MiniGrid-DistShift1-v0",
    "MiniGrid-Dynamic-Obstacles-6x6-v0",
    "MiniGrid-Dynamic-Obstacles-Random-5x5-v0",
]
FAST_IDS = [i for i in FAST_IDS if i in mg.SUPPORTED_IDS]


def _fresh(env_id: str, seed: int, rng: np.random.Generator, near_limit_p: float):
    fenv = gym.make(env_id).unwrapped
    fenv.reset(seed=seed)
    if rng.random() < near_limit_p:  # start close to the step limit to exercise truncation
        fenv.step_count = fenv.max_steps - int(rng.integers(1, 15))
    return fenv


def _check_obs(batched: dict, i: int, fobs: dict, env, ctx: str) -> None:
    img = batched["image"][i].cpu().numpy()
    if not np.array_equal(img, fobs["image"]):
        diff = np.argwhere((img != fobs["image"]).any(-1))
        raise AssertionError(f"{ctx}: image differs at view cells {diff.tolist()}\nours[...,0]=\n{img[..., 0].T}\n"
                             f"farama[...,0]=\n{fobs['image'][..., 0].T}")
    assert int(batched["direction"][i]) == int(fobs["direction"]), ctx
    assert env.missions[int(batched["mission"][i])] == fobs["mission"], ctx


def run_differential(env_id: str, num_envs: int, steps: int, seed: int = 0, near_limit_p: float = 0.3,
                     reset_mode: str = "auto") -> dict:
    rng = np.random.default_rng(seed)
    env = mg.make(env_id, num_envs=num_envs, seed=seed, reset_mode=reset_mode)
    next_seed = seed * 100003
    fenvs = []
    for _ in range(num_envs):
        fenvs.append(_fresh(env_id, next_seed, rng, near_limit_p))
        next_seed += 1
    obs = env.load_minigrid(fenvs)
    for i, f in enumerate(fenvs):
        _check_obs(obs, i, f.gen_obs(), env, f"{env_id} load env {i}")
    stats = {"terminated": 0, "truncated": 0, "success": 0, "reward": 0.0, "carry_steps": 0, "open_door_steps": 0}
    na = env.single_action_space.n
    p = ACTION_P[:na] / ACTION_P[:na].sum()
    for t in range(steps):
        acts = rng.choice(na, size=num_envs, p=p)
        fres = [f.step(int(acts[i])) for i, f in enumerate(fenvs)]
        if env.spec.num_obstacles:  # replay Farama's random obstacle moves; all else is deterministic
            env.next_obstacle_pos = torch.tensor([[list(o.cur_pos) for o in f.obstacles] for f in fenvs])
        obs, rew, term, trunc, info = env.step(torch.as_tensor(acts))
        reloads, reload_idx = [], []
        for i, f in enumerate(fenvs):
            fobs, frew, fterm, ftrunc, _ = fres[i]
            ftrunc = ftrunc and not fterm
            ctx = f"{env_id} step {t} env {i} action {acts[i]}"
            stats["carry_steps"] += int(f.carrying is not None)
            stats["open_door_steps"] += int(any(o is not None and o.type == "door" and o.is_open for o in f.grid.grid))
            assert abs(float(rew[i]) - float(frew)) < 1e-6, f"{ctx}: reward {float(rew[i])} vs {frew}"
            assert bool(term[i]) == fterm, f"{ctx}: terminated {bool(term[i])} vs {fterm}"
            assert bool(trunc[i]) == ftrunc, f"{ctx}: truncated {bool(trunc[i])} vs {ftrunc}"
            assert bool(info["success"][i]) == (fterm and frew > 0), ctx
            if fterm or ftrunc:
                _check_obs(info["final_obs"], i, fobs, env, ctx + " (final_obs)")
                stats["terminated"] += int(fterm)
                stats["truncated"] += int(ftrunc)
                stats["success"] += int(frew > 0)
                stats["reward"] += float(frew)
                nf = _fresh(env_id, next_seed, rng, near_limit_p)
                next_seed += 1
                fenvs[i] = nf
                reloads.append(nf)
                reload_idx.append(i)
            else:
                _check_obs(obs, i, fobs, env, ctx)
                _check_obs(info["final_obs"], i, fobs, env, ctx + " (final_obs == obs)")
        if reloads:
            obs = env.load_minigrid(reloads, reload_idx)
            for i in reload_idx:
                _check_obs(obs, i, fenvs[i].gen_obs(), env, f"{env_id} reload env {i}")
    return stats


@pytest.mark.parametrize("env_id", FAST_IDS)
def test_differential_fast(env_id):
    stats = run_differential(env_id, num_envs=16, steps=150)
    assert stats["truncated"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("env_id", mg.SUPPORTED_IDS)
def test_differential_long(env_id):
    stats = run_differential(env_id, num_envs=32, steps=600, seed=1)
    assert stats["terminated"] + stats["truncated"] > 0


@pytest.mark.parametrize("env_id", ["MiniGrid-Empty-5x5-v0", "MiniGrid-DoorKey-6x6-v0", "MiniGrid-KeyCorridorS3R1-v0",
                                    "MiniGrid-ObstructedMaze-1Dlhb-v0", "MiniGrid-Dynamic-Obstacles-5x5-v0"])
def test_differential_where_reset_mode(env_id):
    stats = run_differential(env_id, num_envs=8, steps=120, seed=2, reset_mode="where")
    assert stats["terminated"] + stats["truncated"] > 0


def test_differential_reaches_goal_and_doors():
    """Steer DoorKey-5x5 envs with a biased walk long enough that doors open and goals are reached."""
    stats = run_differential("MiniGrid-DoorKey-5x5-v0", num_envs=32, steps=400, seed=3, near_limit_p=0.0)
    assert stats["success"] > 0 and stats["carry_steps"] > 0 and stats["open_door_steps"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["MiniGrid-ObstructedMaze-1Dlh-v0", "MiniGrid-KeyCorridorS3R1-v0",
                                    "MiniGrid-Dynamic-Obstacles-5x5-v0"])
def test_differential_reaches_targets(env_id):
    """Long enough random walks that boxes are opened, locked doors unlocked and targets picked up
    (or, with moving obstacles, both goals and collisions happen)."""
    stats = run_differential(env_id, num_envs=32, steps=400, seed=3, near_limit_p=0.0)
    assert stats["success"] > 0
    if "Dynamic" in env_id:
        assert stats["terminated"] > stats["success"]  # collisions end episodes too
    else:
        assert stats["open_door_steps"] > 0
