import math

import numpy as np
import pytest
import torch

from algorithms.ppo import PPO, NonFiniteLossError
from rlcore.learner import checkpoint_on_non_finite
from rlcore.checkpoint import CheckpointError
from rlcore.reward import RewardModule, RewardRouting
from toy_envs import ChainEnv, PointEnv


def _flat_params(model: PPO) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()])


def test_ppo_learns_chain():
    env = ChainEnv(num_envs=8, length=6, max_steps=20)
    log = []
    PPO(env, n_steps=32, seed=0).learn(16_384, callback=lambda m, model: log.append(m))
    assert log[0]["time/timesteps"] == 256
    assert log[-1]["rollout/success_rate"] > 0.95  # random walk succeeds far less often
    assert log[-1]["rollout/ep_length_mean"] < 8


def test_ppo_continuous_actions_improve():
    env = PointEnv(num_envs=8)
    log = []
    PPO(env, n_steps=32, seed=0, ent_coef=0.0).learn(30_000, callback=lambda m, model: log.append(m))
    assert log[-1]["rollout/ep_return_mean"] > log[0]["rollout/ep_return_mean"] + 5


def test_seeded_runs_are_reproducible():
    a = PPO(ChainEnv(num_envs=4), n_steps=16, seed=3).learn(2048)
    b = PPO(ChainEnv(num_envs=4), n_steps=16, seed=3).learn(2048)
    c = PPO(ChainEnv(num_envs=4), n_steps=16, seed=4).learn(2048)
    assert torch.equal(_flat_params(a), _flat_params(b))
    assert not torch.equal(_flat_params(a), _flat_params(c))


def test_save_load_round_trip(tmp_path):
    env = ChainEnv(num_envs=4)
    model = PPO(env, n_steps=16, seed=0).learn(1024)
    path = tmp_path / "model.pt"
    model.save(str(path))
    loaded = PPO.load(str(path))  # no env: predict only
    obs = torch.eye(5)[torch.tensor([0, 1, 2, 3])]
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    assert torch.equal(a1, a2)
    assert loaded.num_timesteps == model.num_timesteps == 1024
    np_actions, _ = loaded.predict(obs.numpy(), deterministic=True)
    assert isinstance(np_actions, np.ndarray) and np_actions.tolist() == a1.tolist()
    # Training continues from the loaded state with an env.
    resumed = PPO.load(str(path), env=ChainEnv(num_envs=4))
    resumed.learn(2048, reset_num_timesteps=False)
    assert resumed.num_timesteps == 2048


def test_load_rejects_mismatched_and_corrupt_checkpoints(tmp_path):
    path = tmp_path / "model.pt"
    PPO(ChainEnv(num_envs=2, length=5), n_steps=8).save(str(path))
    with pytest.raises(CheckpointError, match="observation_space"):
        PPO.load(str(path), env=ChainEnv(num_envs=2, length=7))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        PPO.load(str(bad))
    with pytest.raises(CheckpointError, match="does not exist"):
        PPO.load(str(tmp_path / "missing.pt"))


class _NaNRewardEnv(ChainEnv):
    """A chain whose rewards are NaN: the value loss becomes non-finite."""

    def step(self, actions):
        obs, reward, terminated, truncated, info = super().step(actions)
        return obs, torch.full_like(reward, math.nan), terminated, truncated, info


def test_nan_loss_stops_with_step_and_checkpoint(tmp_path):
    model = PPO(_NaNRewardEnv(num_envs=2), n_steps=8)
    model.on_non_finite = checkpoint_on_non_finite(tmp_path / "last_good.pt")
    with pytest.raises(NonFiniteLossError, match=r"non-finite .*value.* loss at timestep 16"):
        model.learn(1000)
    assert (tmp_path / "last_good.pt").exists()
    restored = PPO.load(str(tmp_path / "last_good.pt"))
    assert restored.num_timesteps == 16
    assert all(torch.isfinite(p).all() for p in restored.policy.parameters())


class _NaNReward(RewardModule):
    routing = RewardRouting.REPLACE
    name = "broken_reward"

    def compute(self, batch):
        return torch.full_like(batch.reward, math.nan)


def test_non_finite_reward_module_is_named():
    from rlcore.reward import NonFiniteRewardError

    with pytest.raises(NonFiniteRewardError, match="broken_reward"):
        PPO(ChainEnv(num_envs=2), n_steps=8, reward_module=_NaNReward()).learn(1000)


class _CountBonus(RewardModule):
    """Tiny intrinsic module: 1/sqrt(visits) of the chain position (exercises the intrinsic stream)."""

    def __init__(self, length: int):
        super().__init__()
        self.register_buffer("counts", torch.zeros(length))

    def compute(self, batch):
        pos = batch.next_obs.argmax(-1)
        return (self.counts[pos] + 1).rsqrt()

    def update(self, batch):
        self.counts += torch.bincount(batch.next_obs.argmax(-1).flatten(), minlength=len(self.counts)).float()
        return {"visited": float((self.counts > 0).sum())}


def test_intrinsic_stream_and_reward_module_metrics():
    log = []
    model = PPO(ChainEnv(num_envs=4, length=5), n_steps=16, reward_module=_CountBonus(5))
    assert model.num_value_streams == 2
    model.learn(1024, callback=lambda m, _: log.append(m))
    assert "reward/intrinsic_mean" in log[-1] and log[-1]["reward/visited"] == 5
    assert float(model.reward_module.counts.sum()) == 1024


def test_from_config_names_unknown_keys():
    env = ChainEnv()
    with pytest.raises(ValueError, match="algo.params.n_stepz"):
        PPO.from_config(env, {"params": {"n_stepz": 3}})
    with pytest.raises(ValueError, match="algo.policy.widths"):
        PPO.from_config(env, {"policy": {"widths": [3]}})
    with pytest.raises(ValueError, match="algo.n_steps must be a positive integer"):
        PPO.from_config(env, {"params": {"n_steps": 0}})
    with pytest.raises(ValueError, match="total_timesteps must be positive"):
        PPO(env).learn(0)


def test_policy_rejects_unsupported_spaces():
    import gymnasium as gym

    env = ChainEnv()
    env.single_action_space = gym.spaces.MultiBinary(3)
    with pytest.raises(ValueError, match="action spaces"):
        PPO(env)


@pytest.mark.cuda
def test_rollout_and_update_on_cuda_without_sync_in_step():
    env = ChainEnv(num_envs=8, device="cuda")
    model = PPO(env, n_steps=8)
    model.learn(256)
    assert next(model.policy.parameters()).device.type == "cuda"


def test_ppo_learns_minigrid_empty_5x5():
    """Fast learning smoke test on the batched MiniGrid: Empty-5x5 is solved in a few thousand updates."""
    import envs.minigrid as mg
    from rlcore.evaluation import evaluate_policy

    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=32, seed=0)
    model = PPO(env, n_steps=64, n_minibatches=4, learning_rate=1e-3, seed=0).learn(40_960)
    eval_env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=32, seed=123)
    result = evaluate_policy(lambda obs: model.predict(obs)[0], eval_env, seed=123)
    # A uniformly random policy succeeds on about 40% of the episodes with a return near 0.2.
    assert result["success_rate"] >= 0.95
    assert result["return_mean"] >= 0.8


def test_checkpoint_saved_before_grid_descriptions_still_resumes(tmp_path):
    """MiniGrid checkpoints written before envs attached their symbolic-grid description to the
    observation space load into a learner on the same env."""
    import envs.minigrid as mg
    from rlcore.checkpoint import load_checkpoint, save_checkpoint

    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, device="cpu", seed=0)
    model = PPO(env, n_steps=8, seed=0)
    payload = model.state_dict()
    assert "symbolic_grid" in payload["observation_space"]
    del payload["observation_space"]["symbolic_grid"]
    save_checkpoint(tmp_path / "old.pt", payload)
    fresh = PPO(env, n_steps=8, seed=1)
    fresh.load_state_dict(load_checkpoint(tmp_path / "old.pt", "rlreward.ppo/1"), source="old.pt")
    assert all(torch.equal(a, b) for a, b in zip(fresh.policy.parameters(), model.policy.parameters()))


def _one_rollout(model: PPO) -> PPO:
    from rlcore.callbacks import as_callback

    model._last_obs, _ = model.env.reset(seed=0)
    model._collect_rollout(as_callback(None))
    return model


def test_single_value_stream_fits_one_critic_to_the_scaled_sum():
    from rlcore.rollout import compute_gae

    model = _one_rollout(PPO(ChainEnv(num_envs=8, length=3), n_steps=64, reward_module=_CountBonus(3),
                             single_value_stream=True, ext_coef=100.0, int_coef=0.25, seed=1))
    assert model.num_value_streams == 1 and model.policy.critic_out.out_features == 1
    model.reward_module.update(model.storage.transitions())  # counts > 0: a bonus that varies
    adv, returns, extra = model._advantages()
    s = model.storage
    r_int = model.reward_module.compute(s.transitions())
    assert float(r_int.std()) > 0 and float(s.rewards.abs().sum()) > 0  # both parts of the sum are non-trivial
    expected_adv, expected_ret = compute_gae(100.0 * s.rewards + 0.25 * r_int, s.values[..., 0],
                                             model._values_of(s.next_obs)[..., 0], s.terminated,
                                             s.terminated | s.truncated, 0.99, 0.95)
    assert returns.shape == (64, 8, 1)
    torch.testing.assert_close(adv, expected_adv)
    torch.testing.assert_close(returns[..., 0], expected_ret)
    assert "reward/intrinsic_mean" in extra


def test_single_value_stream_scales_the_env_reward_without_a_module():
    def returns_of(**kw):
        model = PPO(ChainEnv(num_envs=8, length=3), n_steps=64, seed=2, **kw)
        with torch.no_grad():  # a critic that says 0 everywhere: returns are then linear in the rewards
            model.policy.critic_out.weight.zero_()
            model.policy.critic_out.bias.zero_()
        return _one_rollout(model)._advantages()[1]

    plain = returns_of()
    scaled = returns_of(single_value_stream=True, ext_coef=100.0)
    assert float(plain.abs().sum()) > 0
    torch.testing.assert_close(scaled, 100.0 * plain)


def test_single_value_stream_refuses_a_second_discount():
    with pytest.raises(ValueError, match="algo.gamma_int=0.9 differs"):
        PPO(ChainEnv(num_envs=2), n_steps=8, single_value_stream=True, gamma_int=0.9)
