"""Contract checks for GymnasiumBatchedEnv against plain gymnasium envs."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlcore.adapters.gymnasium import GymnasiumBatchedEnv, make_gym_env
from rlcore.env import BatchedEnv

HAS_CUDA = torch.cuda.is_available()
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None




def _np(x):
    if isinstance(x, dict):
        return {k: v.cpu().numpy() for k, v in x.items()}
    return x.cpu().numpy()


def _assert_obs_equal(batched_row, plain_obs, keys=None):
    if keys is None:
        np.testing.assert_allclose(batched_row, plain_obs, rtol=0, atol=0)
    else:
        for k in keys:
            np.testing.assert_array_equal(batched_row[k], np.asarray(plain_obs[k]))


def _row(obs, i):
    return {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]


def _compare_with_plain(env_id: str, num_envs: int, steps: int, seed: int, make_kwargs=None, keys=None):
    """Step the adapter and N plain envs with the same seeds/actions; compare everything."""
    make_kwargs = make_kwargs or {}
    benv = GymnasiumBatchedEnv(env_id, num_envs=num_envs, **make_kwargs)
    plain = [gym.make(env_id, **make_kwargs) for _ in range(num_envs)]
    obs, _ = benv.reset(seed=seed)
    pobs = [p.reset(seed=seed + i)[0] for i, p in enumerate(plain)]
    for i in range(num_envs):
        _assert_obs_equal(_row(_np(obs), i), pobs[i], keys)
    rng = np.random.default_rng(seed)
    n_done = 0
    for _ in range(steps):
        acts = rng.integers(0, benv.single_action_space.n, size=num_envs)
        obs, rew, term, trunc, info = benv.step(torch.as_tensor(acts))
        o, f = _np(obs), _np(info["final_obs"])
        for i, p in enumerate(plain):
            po, pr, pt, ptr, _ = p.step(int(acts[i]))
            assert rew[i].item() == pytest.approx(float(pr))
            assert bool(term[i]) == pt and bool(trunc[i]) == ptr
            _assert_obs_equal(_row(f, i), po, keys)  # final obs = last obs of the episode
            if pt or ptr:
                n_done += 1
                po, _ = p.reset()  # same-step auto-reset: new first obs is returned now
            _assert_obs_equal(_row(o, i), po, keys)
    benv.close()
    return n_done


# ------------------------------------------------------------------------------- CartPole
def test_cartpole_shapes_dtypes_devices():
    env = GymnasiumBatchedEnv("CartPole-v1", num_envs=3, device="cpu")
    assert isinstance(env, BatchedEnv)
    assert env.num_envs == 3 and env.device == torch.device("cpu")
    assert env.single_observation_space.shape == (4,)
    obs, info = env.reset(seed=0)
    assert obs.shape == (3, 4) and obs.dtype == torch.float32 and isinstance(info, dict)
    obs, rew, term, trunc, info = env.step(torch.zeros(3, dtype=torch.long))
    assert obs.shape == (3, 4) and obs.dtype == torch.float32
    assert rew.shape == (3,) and rew.dtype == torch.float32
    assert term.dtype == torch.bool and trunc.dtype == torch.bool
    assert info["final_obs"].shape == (3, 4) and info["success"].dtype == torch.bool
    for t in (obs, rew, term, trunc, info["final_obs"], info["success"]):
        assert t.device == env.device
    assert env.get_state() == {}
    env.close()


def test_cartpole_matches_plain_gymnasium_with_autoreset():
    n_done = _compare_with_plain("CartPole-v1", num_envs=3, steps=80, seed=5)
    assert n_done >= 3  # several terminations were exercised


def test_cartpole_truncation_and_final_obs_rows():
    env = GymnasiumBatchedEnv("CartPole-v1", num_envs=2, max_episode_steps=4)
    obs, _ = env.reset(seed=1)
    for t in range(4):
        obs, rew, term, trunc, info = env.step(torch.tensor([0, 1]))
        if t < 3:
            assert not trunc.any()
            torch.testing.assert_close(info["final_obs"], obs)  # unfinished rows equal obs
    assert trunc.all() and not term.any()
    assert not torch.equal(info["final_obs"], obs)
    assert not info["success"].any()


def test_reset_seed_reproducible_and_per_env_seeds():
    env = GymnasiumBatchedEnv("CartPole-v1", num_envs=3)
    a, _ = env.reset(seed=11)
    b, _ = env.reset(seed=11)
    torch.testing.assert_close(a, b)
    for i in range(3):
        plain, _ = gym.make("CartPole-v1").reset(seed=11 + i)
        np.testing.assert_array_equal(a[i].numpy(), plain)
    e2 = make_gym_env("CartPole-v1", num_envs=3, device="cpu", seed=11)
    c, _ = e2.reset()
    e3 = make_gym_env("CartPole-v1", num_envs=3, device="cpu", seed=11)
    d, _ = e3.reset()
    torch.testing.assert_close(c, d)


class _FlagSuccess(gym.Wrapper):
    """Reports ``is_success`` when CartPole stays up (never here) or falls (for the test)."""

    def step(self, action):
        obs, rew, term, trunc, info = self.env.step(action)
        info["is_success"] = bool(term)
        return obs, rew, term, trunc, info


def test_success_from_info_is_success():
    env = GymnasiumBatchedEnv("CartPole-v1", num_envs=2, wrappers=[_FlagSuccess])
    env.reset(seed=0)
    seen = False
    for _ in range(60):
        _, _, term, trunc, info = env.step(torch.ones(2, dtype=torch.long))
        torch.testing.assert_close(info["success"], term)
        seen |= bool(term.any())
    assert seen
    assert env.env_is_wrapped(_FlagSuccess) == [True, True]


def test_bad_env_id_names_the_id():
    with pytest.raises(ValueError, match="NoSuchEnv-v0"):
        GymnasiumBatchedEnv("NoSuchEnv-v0", num_envs=2)
    with pytest.raises(ValueError, match="MiniGrid-NoSuch-v0"):
        GymnasiumBatchedEnv("MiniGrid-NoSuch-v0")
    with pytest.raises(ValueError, match="vectorization"):
        GymnasiumBatchedEnv("CartPole-v1", vectorization="threads")


def test_bad_actions_give_clear_errors():
    env = GymnasiumBatchedEnv("CartPole-v1", num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        env.step(torch.zeros(2))
    with pytest.raises(TypeError, match="torch.Tensor"):
        env.step(np.zeros(2, dtype=np.int64))


def test_vector_env_input_needs_same_step():
    fns = [lambda: gym.make("CartPole-v1")] * 2
    with pytest.raises(ValueError, match="SAME_STEP"):
        GymnasiumBatchedEnv(SyncVectorEnv(fns))
    env = GymnasiumBatchedEnv(SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP))
    assert env.num_envs == 2 and env.env_id == "CartPole-v1"
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4)


def test_async_vectorization_matches_sync():
    a = GymnasiumBatchedEnv("CartPole-v1", num_envs=2, vectorization="async")
    s = GymnasiumBatchedEnv("CartPole-v1", num_envs=2, vectorization="sync")
    try:
        torch.testing.assert_close(a.reset(seed=3)[0], s.reset(seed=3)[0])
        for t in range(30):
            act = torch.tensor([t % 2, 1])
            ra, rs = a.step(act), s.step(act)
            torch.testing.assert_close(ra[0], rs[0])
            torch.testing.assert_close(ra[4]["final_obs"], rs[4]["final_obs"])
            torch.testing.assert_close(ra[2], rs[2])
    finally:
        a.close()
        s.close()


# ------------------------------------------------------------------------------- MiniGrid
def test_minigrid_dict_obs_and_state():
    env = GymnasiumBatchedEnv("MiniGrid-DoorKey-5x5-v0", num_envs=2)
    assert env.dropped_obs_keys == ("mission",)
    assert set(env.single_observation_space.spaces) == {"direction", "image"}
    obs, _ = env.reset(seed=0)
    assert obs["image"].shape == (2, 7, 7, 3) and obs["image"].dtype == torch.uint8
    assert obs["direction"].shape == (2,) and obs["direction"].dtype == torch.int64
    state = env.get_state()
    assert state["agent_pos"].shape == (2, 2) and state["agent_pos"].dtype == torch.int64
    assert state["agent_dir"].shape == (2,)
    plain = gym.make("MiniGrid-DoorKey-5x5-v0")
    plain.reset(seed=1)
    assert tuple(state["agent_pos"][1].tolist()) == tuple(int(x) for x in plain.unwrapped.agent_pos)
    assert int(state["agent_dir"][1]) == plain.unwrapped.agent_dir
    torch.testing.assert_close(state["agent_dir"], obs["direction"])


def test_minigrid_matches_plain_with_truncation_autoreset():
    n_done = _compare_with_plain(
        "MiniGrid-DoorKey-5x5-v0", num_envs=2, steps=25, seed=2, make_kwargs={"max_steps": 8}, keys=("image", "direction")
    )
    assert n_done >= 4


def test_minigrid_success_rule():
    # Empty-5x5: agent at (1, 1) facing right, goal at (3, 3).
    env = GymnasiumBatchedEnv("MiniGrid-Empty-5x5-v0", num_envs=2)
    env.reset(seed=0)
    fwd, right, left = 2, 1, 0
    plan = [(fwd, left), (fwd, left), (right, left), (fwd, left), (fwd, left)]
    for a in plan:
        obs, rew, term, trunc, info = env.step(torch.tensor(a))
    assert term.tolist() == [True, False]
    assert rew[0] > 0 and info["success"].tolist() == [True, False]
    # auto-reset put env 0 back at the start, final_obs differs from the new first obs
    assert env.get_state()["agent_pos"][0].tolist() == [1, 1]
    assert not torch.equal(info["final_obs"]["image"][0], obs["image"][0])


# ------------------------------------------------------------------------------- optional
@pytest.mark.skipif(not HAS_MUJOCO, reason="mujoco is not installed")
def test_halfcheetah_state_and_box_actions():
    env = GymnasiumBatchedEnv("HalfCheetah-v5", num_envs=2)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == torch.float32 and obs.shape == (2, 17)
    obs, rew, term, trunc, info = env.step(torch.zeros(2, 6))
    st = env.get_state()
    assert st["qpos"].shape == (2, 9) and st["qvel"].shape == (2, 9)
    with pytest.raises(ValueError, match="shape"):
        env.step(torch.zeros(2, 5))


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_device():
    env = GymnasiumBatchedEnv("MiniGrid-DoorKey-5x5-v0", num_envs=2, device="cuda")
    obs, _ = env.reset(seed=0)
    assert obs["image"].is_cuda
    obs, rew, term, trunc, info = env.step(torch.tensor([2, 2], device="cuda"))
    assert rew.is_cuda and term.is_cuda and info["final_obs"]["image"].is_cuda and info["success"].is_cuda
    assert env.get_state()["agent_pos"].is_cuda
    with pytest.raises(ValueError, match="cpu"):
        env.step(torch.tensor([2, 2]))
