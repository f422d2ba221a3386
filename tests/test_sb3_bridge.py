"""SB3VecEnv: SB3's VecEnv API over the library's batched envs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.env_checker import _check_obs
from stable_baselines3.common.vec_env import VecCheckNan, VecEnv, VecMonitor, VecNormalize

from rlcore.adapters.gymnasium import GymnasiumBatchedEnv
from rlcore.adapters.sb3 import SB3VecEnv
from rlcore.env import BatchedEnv

HAS_CUDA = torch.cuda.is_available()




class CountdownEnv(BatchedEnv):
    """Pure-torch test env: env ``i`` terminates after ``i + 2`` steps (success when ``i`` is even)
    and is truncated after ``limit`` steps. Obs float32[N, 2] = (step count, env index);
    reward = 1 per step."""

    def __init__(self, num_envs: int = 4, limit: int = 4, device: str = "cpu"):
        self.num_envs, self.device, self.limit = num_envs, torch.device(device), limit
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.idx = torch.arange(num_envs, device=self.device)
        self.t = torch.zeros(num_envs, dtype=torch.int64, device=self.device)
        self.reset_seeds: list[Any] = []

    def _obs(self) -> torch.Tensor:
        return torch.stack([self.t.float(), self.idx.float()], dim=1)

    def reset(self, seed=None, options=None):
        self.reset_seeds.append(seed)
        self.t.zero_()
        return self._obs(), {}

    def step(self, actions):
        self.check_actions(actions)
        self.t += 1
        term = self.t >= self.idx + 2
        trunc = (self.t >= self.limit) & ~term
        final = self._obs()
        done = term | trunc
        self.t = torch.where(done, torch.zeros_like(self.t), self.t)
        rew = torch.ones(self.num_envs, device=self.device)
        success = term & (self.idx % 2 == 0)
        return self._obs(), rew, term, trunc, {"final_obs": final, "success": success}


def _check_vecenv(venv: VecEnv, steps: int = 20) -> None:
    """SB3 ``check_env``-style checks that apply to a VecEnv."""
    n = venv.num_envs
    assert isinstance(venv.observation_space, spaces.Space) and isinstance(venv.action_space, spaces.Space)
    assert venv.render_mode is None
    obs = venv.reset()
    for i in range(n):
        row = {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]
        _check_obs(row, venv.observation_space, "reset")
    for _ in range(steps):
        actions = np.stack([venv.action_space.sample() for _ in range(n)])
        venv.step_async(actions)
        obs, rew, dones, infos = venv.step_wait()
        assert isinstance(rew, np.ndarray) and rew.shape == (n,) and rew.dtype == np.float32
        assert isinstance(dones, np.ndarray) and dones.shape == (n,) and dones.dtype == np.bool_
        assert isinstance(infos, list) and len(infos) == n and all(isinstance(x, dict) for x in infos)
        for i in range(n):
            row = {k: v[i] for k, v in obs.items()} if isinstance(obs, dict) else obs[i]
            _check_obs(row, venv.observation_space, "step")
            if dones[i]:
                _check_obs(infos[i]["terminal_observation"], venv.observation_space, "step")
            else:
                assert "terminal_observation" not in infos[i]


# ------------------------------------------------------------------------------- API checks
def test_vecenv_api_cartpole_and_minigrid():
    cart = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=3))
    assert cart.observation_space == cart.env.single_observation_space
    _check_vecenv(cart, steps=40)
    grid = SB3VecEnv(GymnasiumBatchedEnv("MiniGrid-DoorKey-5x5-v0", num_envs=2, max_steps=6))
    obs = grid.reset()
    assert set(obs) == {"direction", "image"} and obs["image"].dtype == np.uint8 and obs["direction"].shape == (2,)
    _check_vecenv(grid, steps=14)


def test_truncation_vs_termination_infos_cartpole():
    venv = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=2, max_episode_steps=5))
    venv.seed(0)
    venv.reset()
    plain = [gym.make("CartPole-v1", max_episode_steps=5) for _ in range(2)]
    for i, p in enumerate(plain):
        p.reset(seed=i)
    for t in range(5):
        _, _, dones, infos = venv.step(np.array([0, 1]))
        last = [p.step(a)[0] for p, a in zip(plain, (0, 1))]
        if t < 4:
            assert not dones.any() and infos == [{}, {}]
    assert dones.all()
    for i in range(2):
        assert infos[i]["TimeLimit.truncated"] is True
        np.testing.assert_array_equal(infos[i]["terminal_observation"], last[i])
        assert infos[i]["episode"]["l"] == 5 and infos[i]["episode"]["r"] == 5.0

    # termination (pole falls) within the 500-step limit: TimeLimit.truncated is False
    venv = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=2))
    venv.seed(0)
    venv.reset()
    for _ in range(40):
        _, _, dones, infos = venv.step(np.array([1, 1]))
        if dones.any():
            break
    for i in np.flatnonzero(dones):
        assert infos[i]["TimeLimit.truncated"] is False and infos[i]["is_success"] is False
        assert "terminal_observation" in infos[i]
    assert dones.any()


def test_countdown_infos_episode_stats_and_success():
    venv = SB3VecEnv(CountdownEnv(num_envs=4, limit=4))
    obs = venv.reset()
    np.testing.assert_array_equal(obs[:, 1], np.arange(4))
    # env0 ends every 2 steps, env1 every 3; at step 4 env2 terminates (len 4) and env3 is
    # truncated by the limit (it would terminate at 5).
    expected_done = [[], [0], [1], [0, 2, 3], [], [0, 1]]
    for step, exp in enumerate(expected_done, start=1):
        obs, rew, dones, infos = venv.step(np.zeros(4, dtype=np.int64))
        assert np.flatnonzero(dones).tolist() == exp, step
        for i in range(4):
            if i not in exp:
                assert infos[i] == {}
        if step == 4:
            step4_obs, step4_infos = obs, infos
    obs, infos = step4_obs, step4_infos
    assert infos[2] == {
        "terminal_observation": pytest.approx(np.array([4.0, 2.0], dtype=np.float32)),
        "TimeLimit.truncated": False,
        "is_success": True,
        "episode": {"r": 4.0, "l": 4, "t": infos[2]["episode"]["t"]},
    }
    assert infos[0]["episode"]["l"] == 2 and infos[0]["is_success"] is True
    assert infos[3]["TimeLimit.truncated"] is True and infos[3]["is_success"] is False
    assert infos[3]["episode"]["l"] == 4
    np.testing.assert_array_equal(obs[2:, 0], [0.0, 0.0])  # auto-reset already happened


def test_one_device_to_host_copy_per_step(monkeypatch):
    venv = SB3VecEnv(CountdownEnv(num_envs=8))
    venv.reset()
    calls = {"n": 0}
    orig = torch.Tensor.cpu

    def counting_cpu(self, *a, **k):
        calls["n"] += 1
        return orig(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    for _ in range(5):
        venv.step(np.zeros(8, dtype=np.int64))
    assert calls["n"] == 5


def test_seed_then_reset_uses_seed():
    inner = CountdownEnv(num_envs=3)
    venv = SB3VecEnv(inner)
    assert venv.seed(7) == [7, 8, 9]
    venv.reset()
    venv.reset()
    assert inner.reset_seeds == [7, None]  # seeds are used once, like SB3's DummyVecEnv

    a = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=3))
    b = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=3))
    a.seed(123)
    b.seed(123)
    np.testing.assert_array_equal(a.reset(), b.reset())
    plain, _ = gym.make("CartPole-v1").reset(seed=125)
    b.seed(123)
    np.testing.assert_array_equal(b.reset()[2], plain)


def test_attr_methods_and_wrapped():
    venv = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=3, max_episode_steps=7))
    assert venv.get_attr("render_mode") == [None, None, None]
    assert venv.get_attr("gravity", indices=[0, 2]) == [9.8, 9.8]
    venv.set_attr("gravity", 5.0, indices=1)
    assert venv.get_attr("gravity") == [9.8, 5.0, 9.8]
    assert venv.env_method("get_wrapper_attr", "_max_episode_steps") == [7, 7, 7]
    assert venv.env_is_wrapped(gym.wrappers.TimeLimit) == [True, True, True]
    assert venv.has_attr("gravity") and not venv.has_attr("no_such_attr")
    # a pure batched env: batch-level attributes, no wrappers
    toy = SB3VecEnv(CountdownEnv(num_envs=2))
    assert toy.get_attr("limit") == [4, 4] and toy.env_is_wrapped(gym.Wrapper) == [False, False]
    toy.set_attr("limit", 9)
    assert toy.env.limit == 9
    with pytest.raises(AttributeError):
        toy.get_attr("nope")


def test_sb3_vecenv_wrappers():
    venv = VecCheckNan(SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=4)), raise_exception=True)
    venv = VecNormalize(VecMonitor(venv), norm_obs=True, norm_reward=True)
    obs = venv.reset()
    assert obs.shape == (4, 4)
    episodes = 0
    for _ in range(60):
        obs, rew, dones, infos = venv.step(np.random.randint(0, 2, size=4))
        for i in np.flatnonzero(dones):
            assert "episode" in infos[i] and infos[i]["terminal_observation"].shape == (4,)
            episodes += 1
    assert episodes > 0
    assert venv.venv.episode_count == episodes  # VecMonitor counted them


# ------------------------------------------------------------------------------- training
def test_ppo_trains_on_batched_cartpole():
    venv = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=4))
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=128, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=3072)
    assert model.num_timesteps >= 3072
    assert len(model.ep_info_buffer) > 0  # filled from info["episode"]
    lengths = [ep["l"] for ep in model.ep_info_buffer]
    assert all(isinstance(x, int) and x > 0 for x in lengths)
    obs = venv.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (4,)


def test_a2c_and_dqn_run():
    venv = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=2))
    A2C("MlpPolicy", venv, n_steps=8, seed=0, device="cpu").learn(total_timesteps=256)
    dqn = DQN("MlpPolicy", venv, learning_starts=64, buffer_size=1000, train_freq=4, seed=0, device="cpu")
    dqn.learn(total_timesteps=400)
    assert dqn.replay_buffer.size() > 0


def test_multi_input_policy_on_minigrid_dict_obs():
    # Keep a Dict observation but drop the 7x7 image, which is too small for SB3's NatureCNN.
    keep = [lambda e: gym.wrappers.FilterObservation(e, ["direction"])]
    venv = SB3VecEnv(GymnasiumBatchedEnv("MiniGrid-Empty-5x5-v0", num_envs=2, max_steps=10, wrappers=keep))
    assert isinstance(venv.observation_space, spaces.Dict)
    model = PPO("MultiInputPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    assert len(model.ep_info_buffer) > 0


# ------------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_bridge_one_copy_and_ppo(monkeypatch):
    venv = SB3VecEnv(CountdownEnv(num_envs=8, device="cuda"))
    obs = venv.reset()
    assert isinstance(obs, np.ndarray)
    _check_vecenv(venv, steps=10)
    gvenv = SB3VecEnv(GymnasiumBatchedEnv("CartPole-v1", num_envs=4, device="cuda"))
    PPO("MlpPolicy", gvenv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu").learn(512)


def test_shared_empty_info_option():
    venv = SB3VecEnv(CountdownEnv(num_envs=4, limit=4), shared_empty_info=True)
    venv.reset()
    _, _, dones, infos = venv.step(np.zeros(4, dtype=np.int64))
    assert infos == [{}] * 4 and infos[0] is infos[3]
    _, _, dones, infos = venv.step(np.zeros(4, dtype=np.int64))
    assert dones.tolist() == [True, False, False, False]
    assert "terminal_observation" in infos[0] and infos[1] == {} and infos[1] is infos[2]
