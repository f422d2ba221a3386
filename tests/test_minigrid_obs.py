"""Observation options of the batched MiniGrid: full-grid images (vs Farama's FullyObsWrapper),
mission strings, RGB frame batches and GIF writing."""

from __future__ import annotations

import gymnasium as gym
import minigrid  # noqa: F401  (registers the Farama ids)
import numpy as np
import pytest
import torch
from minigrid.wrappers import FullyObsWrapper

import envs.minigrid as mg
from envs.minigrid import constants as C
from envs.minigrid.render import save_gif, tile_frames

ACTION_P = np.array([0.12, 0.12, 0.30, 0.14, 0.10, 0.17, 0.05])


def _fresh_full(env_id: str, seed: int, rng: np.random.Generator):
    w = FullyObsWrapper(gym.make(env_id))
    obs, _ = w.reset(seed=seed)
    if rng.random() < 0.3:  # start close to the step limit so truncations happen too
        w.unwrapped.step_count = w.unwrapped.max_steps - int(rng.integers(1, 15))
    return w, obs


def _check(ours: dict, i: int, theirs: dict, env, ctx: str) -> None:
    img = ours["image"][i].cpu().numpy()
    assert img.shape == theirs["image"].shape, ctx
    if not np.array_equal(img, theirs["image"]):
        diff = np.argwhere((img != theirs["image"]).any(-1))
        raise AssertionError(f"{ctx}: full image differs at cells (x, y) {diff.tolist()[:8]}")
    assert int(ours["direction"][i]) == int(theirs["direction"]), ctx
    assert env.mission_strings(ours["mission"][i:i + 1]) == [theirs["mission"]], ctx


@pytest.mark.parametrize("env_id,reset_mode", [("MiniGrid-DoorKey-8x8-v0", "index"),
                                               ("MiniGrid-KeyCorridorS3R2-v0", "where"),
                                               ("MiniGrid-ObstructedMaze-1Dlhb-v0", "index"),
                                               ("MiniGrid-Dynamic-Obstacles-6x6-v0", "where")])
def test_full_obs_matches_fully_obs_wrapper(env_id, reset_mode):
    """obs_mode="full" against Farama's FullyObsWrapper, step for step (states loaded from Farama)."""
    n, steps = 12, 200
    rng = np.random.default_rng(0)
    env = mg.make(env_id, num_envs=n, seed=0, obs_mode="full", reset_mode=reset_mode)
    fenv = gym.make(env_id).unwrapped
    assert env.single_observation_space["image"] == FullyObsWrapper(gym.make(env_id)).observation_space["image"]
    next_seed = 1000
    pairs = []
    for _ in range(n):
        pairs.append(_fresh_full(env_id, next_seed, rng))
        next_seed += 1
    obs = env.load_minigrid([w.unwrapped for w, _ in pairs])
    for i, (w, o) in enumerate(pairs):
        o = w.observation(w.unwrapped.gen_obs())  # step_count may have been moved after reset
        _check(obs, i, o, env, f"{env_id} load {i}")
    na = env.single_action_space.n
    p = ACTION_P[:na] / ACTION_P[:na].sum()
    ends = 0
    for t in range(steps):
        acts = rng.choice(na, size=n, p=p)
        fres = [w.step(int(acts[i])) for i, (w, _) in enumerate(pairs)]
        if env.spec.num_obstacles:  # replay Farama's random obstacle moves
            env.next_obstacle_pos = torch.tensor([[list(o.cur_pos) for o in w.unwrapped.obstacles] for w, _ in pairs])
        obs, rew, term, trunc, info = env.step(torch.as_tensor(acts))
        assert obs["image"].shape == (n, fenv.width, fenv.height, 3) and obs["image"].dtype == torch.uint8
        reloads, idx = [], []
        for i, (fobs, frew, fterm, ftrunc, _) in enumerate(fres):
            ctx = f"{env_id} step {t} env {i} action {acts[i]}"
            assert bool(term[i]) == fterm and bool(trunc[i]) == (ftrunc and not fterm), ctx
            assert abs(float(rew[i]) - float(frew)) < 1e-6, ctx
            if fterm or ftrunc:
                _check(info["final_obs"], i, fobs, env, ctx + " (final_obs)")
                ends += 1
                pairs[i] = _fresh_full(env_id, next_seed, rng)
                next_seed += 1
                reloads.append(pairs[i][0].unwrapped)
                idx.append(i)
            else:
                _check(obs, i, fobs, env, ctx)
        if reloads:
            obs = env.load_minigrid(reloads, idx)
            for i in idx:
                w = pairs[i][0]
                _check(obs, i, w.observation(w.unwrapped.gen_obs()), env, f"{env_id} reload {i}")
    assert ends > 0


def test_full_obs_space_and_autoreset():
    env = mg.make("MiniGrid-KeyCorridorS3R3-v0", num_envs=6, seed=0, obs_mode="full")
    obs, _ = env.reset(seed=1)
    assert obs["image"].shape == (6, env.width, env.height, 3)
    one = {"image": obs["image"][0].numpy(), "direction": int(obs["direction"][0]), "mission": int(obs["mission"][0])}
    assert env.single_observation_space.contains(one)
    # the grid with the agent drawn in; the agent cell is (AGENT, RED, dir)
    ref = env.grid.transpose(1, 2).clone()
    ar = torch.arange(6)
    ax, ay = env.agent_pos[:, 0], env.agent_pos[:, 1]
    agent = obs["image"][ar, ax, ay]
    assert (agent[:, 0] == C.AGENT).all() and (agent[:, 1] == C.RED).all() and torch.equal(agent[:, 2].long(), env.agent_dir)
    ref[ar, ax, ay] = agent
    assert torch.equal(obs["image"], ref)
    # auto-reset rows get the new layout's full image, final_obs the old one
    env.state["step_count"][:3] = env.max_steps - 1
    obs, rew, term, trunc, info = env.step(torch.full((6,), C.DONE))
    assert trunc[:3].all() and not (term | trunc)[3:].any()
    assert torch.equal(obs["image"], env.observe()["image"])
    assert torch.equal(info["final_obs"]["image"][3:], obs["image"][3:])
    with pytest.raises(ValueError, match="obs_mode"):
        mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, obs_mode="rgb")
    # the default observation is unchanged
    assert mg.make("MiniGrid-Empty-5x5-v0", num_envs=2).single_observation_space["image"].shape == (7, 7, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_full_obs_cuda_sync_free():
    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=128, device="cuda", seed=0, obs_mode="full")
    env.reset(seed=0)
    a = torch.randint(0, 7, (128,), device="cuda")
    env.step(a)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(10):
            obs, *_ = env.step(a)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    cpu = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=128, obs_mode="full")
    for k in cpu.state:
        cpu.state[k] = env.state[k].cpu().clone()
    assert torch.equal(cpu.observe()["image"], env.observe()["image"].cpu())


@pytest.mark.parametrize("env_id", ["MiniGrid-UnlockPickup-v0", "MiniGrid-BlockedUnlockPickup-v0",
                                    "MiniGrid-KeyCorridorS3R3-v0", "MiniGrid-ObstructedMaze-1Dlhb-v0",
                                    "MiniGrid-DoorKey-6x6-v0"])
def test_mission_strings(env_id):
    """Loaded Farama states keep Farama's mission text; generated layouts name their target object."""
    env = mg.make(env_id, num_envs=12, seed=0)
    fenvs = []
    for s in range(6):
        f = gym.make(env_id).unwrapped
        f.reset(seed=500 + s)
        fenvs.append(f)
    obs = env.load_minigrid(fenvs, [1, 3, 5, 7, 9, 11])
    got = env.mission_strings(obs["mission"])
    assert got[1::2] == [f.mission for f in fenvs]
    assert env.mission_strings(obs) == got and env.mission_strings([int(obs["mission"][1])]) == got[1:2]
    assert env.mission_strings(int(obs["mission"][3])) == got[3:4]
    # round trip through a Farama env
    assert env.to_minigrid(5).mission == got[5]
    # after auto-resets, every generated mission names the object the task wants picked up
    env.reset(seed=3)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        obs, *_ = env.step(torch.randint(0, env.single_action_space.n, (12,), generator=g))
    texts = env.mission_strings(obs["mission"])
    if env.spec.success_mode == "pickup":
        tgt = env.get_state()["target"].tolist()
        assert texts == [f"pick up the {C.COLOR_NAMES[c]} {C.OBJECT_NAMES[t]}" for t, c, _ in tgt]
    else:
        assert texts == [fenvs[0].mission] * 12  # single-mission task


def test_render_rgb_batch_and_gif(tmp_path):
    f = gym.make("MiniGrid-DoorKey-6x6-v0").unwrapped
    f.reset(seed=11)
    env = mg.make("MiniGrid-DoorKey-6x6-v0", num_envs=3, seed=0)
    env.load_minigrid([f], [2])
    frames = env.render_rgb_batch(tile_size=8)
    assert frames.shape == (3, 6 * 8, 6 * 8, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames[2], f.get_frame(highlight=True, tile_size=8))
    assert np.array_equal(env.render_rgb_batch(torch.tensor([2, 0]), tile_size=8), frames[[2, 0]])
    pov = env.render_rgb_batch([2], tile_size=8, agent_pov=True)
    assert pov.shape == (1, 7 * 8, 7 * 8, 3) and np.array_equal(pov[0], f.get_frame(tile_size=8, agent_pov=True))
    # a short video of the whole batch: turning changes every frame
    video = []
    for _ in range(5):
        video.append(tile_frames(env.render_rgb_batch(tile_size=8), ncols=2, pad=1))
        env.step(torch.full((3,), C.LEFT))
    assert video[0].shape == (2 * 48 + 1, 2 * 48 + 1, 3)
    from PIL import Image

    path = save_gif(video, tmp_path / "batch.gif", fps=5)
    with Image.open(path) as im:
        assert im.n_frames == 5 and im.size == (97, 97) and im.info["duration"] == 200
    path = save_gif(torch.from_numpy(np.stack(video[:3])), tmp_path / "t.gif")
    with Image.open(path) as im:
        assert im.n_frames == 3
    with pytest.raises(ValueError):
        save_gif([], tmp_path / "empty.gif")
