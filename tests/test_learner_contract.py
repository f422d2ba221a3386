"""Every learner of the library keeps the learner contract (rlcore.learner.Learner) the same way."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from toy_envs import ChainEnv, PointEnv

from algorithms.bc import BC
from algorithms.ppo import PPO
from rlcore.data import collect
from rlcore.learner import Learner, NonFiniteLossError, as_action_fn, checkpoint_on_non_finite


def _trained(cls, env):
    if cls.offline:
        data = collect(env, lambda o: torch.ones(o.shape[0], dtype=torch.long), n_episodes=2, seed=0)
        return cls(env, seed=0, log_every=10).fit(data, 20)
    return cls(env, n_steps=8, seed=0).learn(64)


@pytest.mark.parametrize("cls", [PPO, BC])
def test_learner_surface(cls, tmp_path):
    env = ChainEnv(num_envs=3)
    model = _trained(cls, env)
    assert isinstance(model, Learner) and model.num_timesteps > 0
    obs = torch.eye(5)[:3]
    actions = model.act(obs, deterministic=True)
    assert actions.shape == (3,) and actions.dtype == torch.int64 and actions.device == env.device
    np_actions, state = model.predict(obs.numpy(), deterministic=True)
    assert isinstance(np_actions, np.ndarray) and state is None and np_actions.tolist() == actions.tolist()
    assert model.state_dict()["format"] == cls.checkpoint_format
    model.save(tmp_path / "m.pt")
    loaded = cls.load(tmp_path / "m.pt")
    assert loaded.num_timesteps == model.num_timesteps
    assert torch.equal(loaded.act(obs, deterministic=True), actions)
    assert torch.equal(as_action_fn(loaded, env.device, deterministic=True)(obs), actions)


@pytest.mark.parametrize("cls", [PPO, BC])
def test_wrong_training_entry_says_which_one(cls):
    env = ChainEnv(num_envs=2)
    model = cls(env)
    with pytest.raises(NotImplementedError, match=r"fit\(dataset" if cls.offline else r"learn\(total_timesteps"):
        if cls.offline:
            model.learn(10)
        else:
            model.fit(None, 10)


def test_non_finite_hook_runs_before_the_error(tmp_path):
    env = PointEnv(num_envs=2)
    data = collect(env, lambda o: torch.zeros(o.shape[0], 1), n_episodes=2, seed=0)
    data.action[:] = math.inf  # a dataset that makes the Gaussian likelihood non-finite
    model = BC(env, log_every=5)
    model.on_non_finite = checkpoint_on_non_finite(tmp_path / "last_good.pt")
    with pytest.raises(NonFiniteLossError, match=r"non-finite bc loss at gradient step 0; last good state saved"):
        model.fit(data, 10)
    assert BC.load(tmp_path / "last_good.pt").num_timesteps == 0
