"""Reward modules inside stable-baselines3: RewardModuleCallback (on-policy) and RewardModuleVecEnvWrapper."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from toy_envs import ChainEnv, PointEnv

from rlcore.adapters.sb3 import SB3VecEnv
from rlcore.adapters.sb3_rewards import RewardModuleCallback, RewardModuleVecEnvWrapper
from rlcore.rollout import compute_gae
from rlcore.batch import TransitionBatch
from rlcore.reward import NonFiniteRewardError, RewardModule, RewardRouting

HAS_CUDA = torch.cuda.is_available()




# ---------------------------------------------------------------------------------------------- test modules
class ChainCount(RewardModule):
    """Count bonus over ChainEnv positions: ``1 / sqrt(1 + n(pos(next_obs)))``; ``update`` counts the
    rollout's positions and takes one gradient step on a learnable per-position table."""

    routing, episodic, name = RewardRouting.INTRINSIC, False, "chain_count"

    def __init__(self, length: int, device: str = "cpu") -> None:
        super().__init__()
        self.register_buffer("counts", torch.zeros(length, device=device))
        self.table = nn.Parameter(torch.zeros(length, device=device))
        self.opt = torch.optim.SGD([self.table], lr=0.1)
        self.updates: list[TransitionBatch] = []

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        pos = batch.next_obs.argmax(-1)
        return (1.0 + self.counts[pos]).rsqrt()

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        self.updates.append(batch)
        pos = batch.next_obs.argmax(-1).reshape(-1)
        self.counts += torch.bincount(pos, minlength=self.counts.numel()).float()
        loss = (self.table[pos] - 1.0).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach()), "visits": float(self.counts.sum())}


class PositionBonus(RewardModule):
    """Deterministic bonus: the reached position over the chain length minus one (0 .. 1)."""

    routing, name = RewardRouting.INTRINSIC, "position"

    def __init__(self, length: int) -> None:
        super().__init__()
        self.length = length
        self.updates: list[TransitionBatch] = []

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        return batch.next_obs.argmax(-1).float() / (self.length - 1)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        self.updates.append(batch)
        return {}


class ConstantReward(RewardModule):
    def __init__(self, value: float, routing: RewardRouting = RewardRouting.INTRINSIC, name: str = "constant") -> None:
        super().__init__()
        self.value, self.routing, self.name = value, routing, name

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        return torch.full(batch.batch_shape, self.value, device=batch.device)


class DirectionCount(RewardModule):
    """Dict-observation bonus for MiniGrid: count of the agent's reached direction."""

    routing, name = RewardRouting.INTRINSIC, "direction_count"

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("counts", torch.zeros(4))
        self.shapes: list[tuple] = []
        self.batches: list[TransitionBatch] = []

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        assert isinstance(batch.next_obs, dict) and batch.next_obs["image"].dtype == torch.uint8
        return (1.0 + self.counts[batch.next_obs["direction"].long()]).rsqrt()

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        self.shapes.append((tuple(batch.batch_shape), tuple(batch.next_obs["image"].shape)))
        self.batches.append(batch)
        self.counts += torch.bincount(batch.next_obs["direction"].reshape(-1).long(), minlength=4).float()
        return {}


def chain_venv(num_envs: int = 4, length: int = 5, max_steps: int = 6, device: str = "cpu") -> SB3VecEnv:
    return SB3VecEnv(ChainEnv(num_envs=num_envs, length=length, max_steps=max_steps, device=device))


class CapturePPO(PPO):
    """PPO that keeps a copy of what its loss sees (the rollout buffer at the start of ``train``)."""

    def train(self) -> None:
        buf = self.rollout_buffer
        self.captured = getattr(self, "captured", [])
        self.captured.append({k: np.array(getattr(buf, k)) for k in
                              ("advantages", "returns", "rewards", "values", "episode_starts")})
        super().train()


class CaptureA2C(A2C):
    def train(self) -> None:
        self.captured = getattr(self, "captured", [])
        self.captured.append({"advantages": np.array(self.rollout_buffer.advantages)})
        super().train()


class NaiveRewardEdit(BaseCallback):
    """The pitfall: editing rollout_buffer.rewards in on_rollout_end, after SB3 computed advantages."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.model.rollout_buffer.rewards += 1.0


PPO_KW = dict(n_steps=16, batch_size=32, n_epochs=1, gamma=0.9, gae_lambda=0.8, seed=0, device="cpu")


def first_rollout(callback=None, cls=CapturePPO, venv=None, **kw):
    model = cls("MlpPolicy", venv or chain_venv(), **{**PPO_KW, **kw})
    model.learn(total_timesteps=64, callback=callback)
    return model, model.captured[0]


# ---------------------------------------------------------------------------------------------- callback
def test_add_mode_changes_advantages_by_the_expected_amount():
    _, base = first_rollout()
    _, naive = first_rollout(NaiveRewardEdit())
    # the pitfall: rewards changed, the advantages and returns the loss uses did not
    assert np.allclose(naive["rewards"], base["rewards"] + 1.0)
    assert np.array_equal(naive["advantages"], base["advantages"])

    coef, c = 2.0, 0.5
    cb = RewardModuleCallback(ConstantReward(c), mode="add", coef=coef, normalize=False)
    _, got = first_rollout(cb)
    # same seed, same first rollout: only the bonus differs
    assert np.array_equal(got["values"], base["values"])
    assert np.array_equal(got["episode_starts"], base["episode_starts"])
    assert np.allclose(got["rewards"], base["rewards"] + coef * c)
    assert not np.allclose(got["advantages"], base["advantages"])
    # GAE is linear in the rewards: the advantage shift is the GAE of coef * c with zero values
    gamma, lam = PPO_KW["gamma"], PPO_KW["gae_lambda"]
    T = got["rewards"].shape[0]
    last_dones = cb.locals["dones"]  # dones after the last step of the rollout
    expected = np.zeros_like(got["advantages"])
    running = np.zeros(expected.shape[1], dtype=np.float64)
    for t in reversed(range(T)):
        not_done = 1.0 - (np.asarray(last_dones, np.float64) if t == T - 1 else got["episode_starts"][t + 1])
        running = coef * c + gamma * lam * not_done * running
        expected[t] = running
    assert np.allclose(got["advantages"] - base["advantages"], expected, atol=1e-5)
    assert np.allclose(got["returns"] - base["returns"], expected, atol=1e-5)


def test_intrinsic_mode_adds_intrinsic_advantages_and_keeps_extrinsic_returns():
    _, base = first_rollout()
    cb = RewardModuleCallback(ChainCount(5), int_coef=0.7)
    assert cb.mode == "intrinsic" and cb.normalize
    _, got = first_rollout(cb)
    assert np.array_equal(got["rewards"], base["rewards"])
    assert np.array_equal(got["returns"], base["returns"])  # extrinsic value head: extrinsic targets
    a_int = cb.last_int_advantages
    assert a_int is not None and a_int.shape == (16, 4)
    # the last rollout's intrinsic advantages are the ones of the first (64 steps = one rollout)
    assert np.allclose(got["advantages"], base["advantages"] + 0.7 * a_int.numpy(), atol=1e-5)
    assert float(a_int.abs().sum()) > 0
    assert any(k.startswith("chain_count") for k in cb.last_metrics)


def test_update_gets_a_TN_batch_and_trains_the_module():
    module = ChainCount(5)
    before = module.table.detach().clone()
    cb = RewardModuleCallback(module, mode="add", coef=0.1)
    model = PPO("MlpPolicy", chain_venv(), **{**PPO_KW, "n_steps": 8})
    model.learn(total_timesteps=64, callback=cb)
    assert len(module.updates) == 2
    for batch in module.updates:
        assert batch.batch_shape == (8, 4)
        assert batch.obs.shape == batch.next_obs.shape == (8, 4, 5)
        assert batch.action.shape == (8, 4) and batch.action.dtype == torch.int64
        assert batch.terminated.dtype == batch.truncated.dtype == torch.bool
    assert not torch.equal(module.table.detach(), before)
    assert float(module.counts.sum()) == 64
    assert "chain_count/visits" in cb.last_metrics


def test_terminal_observations_and_terminated_vs_truncated():
    length = 3
    module = PositionBonus(length)
    cb = RewardModuleCallback(module, mode="add", normalize=False)
    model = PPO("MlpPolicy", chain_venv(length=length, max_steps=4), **{**PPO_KW, "n_steps": 32})
    model.learn(total_timesteps=128, callback=cb)
    for batch in module.updates:
        pos, next_pos = batch.obs.argmax(-1), batch.next_obs.argmax(-1)
        done = batch.done
        assert bool(batch.terminated.any()) and bool(batch.truncated.any())
        assert not bool((batch.terminated & batch.truncated).any())
        # terminated exactly where the end of the chain was reached; next_obs is that final cell,
        # not the reset observation (cell 0) that SB3 hands back as new_obs
        assert torch.equal(batch.terminated, next_pos == length - 1)
        assert bool((next_pos[batch.terminated] == length - 1).all())
        assert bool((pos[1:][done[:-1]] == 0).all())  # the stream restarts at cell 0
        # time-limit truncations: the last cell before the cut, never terminal
        assert bool((next_pos[batch.truncated] != length - 1).all())
        # elsewhere next_obs is the next step's obs
        assert torch.equal(batch.next_obs[:-1][~done[:-1]], batch.obs[1:][~done[:-1]])
        assert torch.equal(batch.reward, batch.terminated.float())
        # the routed bonus was scored on the true next obs
        assert torch.allclose(module.compute(batch), next_pos.float() / (length - 1))


def test_intrinsic_gae_bootstraps_truncations_only():
    gamma, lam = 0.9, 0.5
    ones = torch.ones(3, 1)
    zeros = torch.zeros(3, 1)
    done = torch.tensor([[False], [True], [False]])
    term, _ = compute_gae(zeros, ones, ones, done, done, gamma, lam)
    trunc, _ = compute_gae(zeros, ones, ones, torch.zeros_like(done), done, gamma, lam)
    assert torch.isclose(term[1, 0], torch.tensor(-1.0))  # no bootstrap after a termination
    assert torch.isclose(trunc[1, 0], torch.tensor(gamma - 1.0))  # V(terminal obs) bootstraps
    # the lambda-chain stops at the episode end in both cases
    d = gamma - 1.0
    assert torch.isclose(trunc[0, 0], d + gamma * lam * trunc[1, 0])
    assert torch.isclose(trunc[2, 0], torch.tensor(d))
    assert torch.isclose(term[0, 0], torch.tensor(d + gamma * lam * -1.0))


def test_replace_mode_keeps_the_timeout_bootstrap():
    cb = RewardModuleCallback(ConstantReward(0.0, routing=RewardRouting.REPLACE, name="zero_model"))
    assert cb.mode == "replace" and not cb.normalize
    _, got = first_rollout(cb, venv=chain_venv(max_steps=3))
    trunc = cb.last_batch.truncated.numpy()
    assert trunc.any()
    assert np.all(got["rewards"][~trunc] == 0.0)  # env reward replaced by the model's (zero)
    assert np.all(got["rewards"][trunc] != 0.0)  # gamma * V(terminal_obs) kept on truncated steps


def test_ppo_and_a2c_learn_with_the_callback():
    module = ChainCount(5)
    model = CapturePPO("MlpPolicy", chain_venv(), **PPO_KW)
    model.learn(total_timesteps=128, callback=RewardModuleCallback(module))
    assert len(module.updates) == 2
    module = ChainCount(5)
    cb = RewardModuleCallback(module, mode="add", coef=0.5)
    a2c = CaptureA2C("MlpPolicy", chain_venv(), n_steps=5, seed=0, device="cpu")
    a2c.learn(total_timesteps=100, callback=cb)
    assert len(module.updates) == 5 and module.updates[0].batch_shape == (5, 4)
    cb2 = RewardModuleCallback(ChainCount(5))  # intrinsic mode on A2C
    CaptureA2C("MlpPolicy", chain_venv(), n_steps=5, seed=0, device="cpu").learn(40, callback=cb2)
    assert cb2.last_int_advantages.shape == (5, 4)


class FlatDictExtractor(BaseFeaturesExtractor):
    """Flattens and concatenates a Dict observation (MiniGrid's 7x7 image is too small for NatureCNN)."""

    def __init__(self, observation_space: gym.spaces.Dict) -> None:
        super().__init__(observation_space, gym.spaces.flatdim(observation_space))

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([v.flatten(1).float() for v in obs.values()], dim=1)


def test_dict_observations_with_minigrid():
    import envs.minigrid as mg

    module = DirectionCount()
    venv = SB3VecEnv(mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0))
    model = PPO("MultiInputPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu",
                policy_kwargs=dict(features_extractor_class=FlatDictExtractor, normalize_images=False))
    model.learn(total_timesteps=32, callback=RewardModuleCallback(module))
    assert module.shapes[0] == ((8, 2), (8, 2, 7, 7, 3))
    # SB3 feeds the policy channel-first images (VecTransposeImage); the module gets the env's layout
    first_obs, _ = mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0).reset(seed=0)
    assert torch.equal(module.batches[0].obs["image"][0], first_obs["image"])
    assert torch.equal(module.batches[0].obs["direction"][0], first_obs["direction"])
    wrapped = RewardModuleVecEnvWrapper(SB3VecEnv(mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0)),
                                        DirectionCount(), update_every=4)
    wrapped.reset()
    for _ in range(8):
        wrapped.step(np.array([0, 1]))
    assert wrapped.module.shapes == [((4, 2), (4, 2, 7, 7, 3))] * 2


def test_nan_reward_raises_naming_the_module():
    cb = RewardModuleCallback(ConstantReward(float("nan"), name="nan_bonus"))
    with pytest.raises(NonFiniteRewardError, match="nan_bonus"):
        PPO("MlpPolicy", chain_venv(), **PPO_KW).learn(16, callback=cb)
    for normalize in (False, True):
        wrapped = RewardModuleVecEnvWrapper(chain_venv(), ConstantReward(float("nan"), name="nan_bonus"),
                                            normalize=normalize)
        wrapped.reset()
        with pytest.raises(NonFiniteRewardError, match="nan_bonus"):
            wrapped.step(np.ones(4, dtype=np.int64))


def test_callback_needs_an_on_policy_algorithm():
    with pytest.raises(TypeError, match="RewardModuleVecEnvWrapper"):
        DQN("MlpPolicy", chain_venv(), learning_starts=8, device="cpu").learn(16, callback=RewardModuleCallback(ChainCount(5)))


# ---------------------------------------------------------------------------------------------- wrapper
def test_wrapper_reward_is_env_reward_plus_coef_bonus():
    length, coef = 4, 0.3
    module = PositionBonus(length)
    venv = RewardModuleVecEnvWrapper(chain_venv(length=length, max_steps=5), module, coef=coef,
                                     normalize=False, update_every=6, info_all_envs=True)
    assert venv.mode == "add"
    venv.reset()
    rng = np.random.default_rng(0)
    terminated_seen = truncated_seen = False
    for _ in range(30):
        actions = (rng.random(4) < 0.8).astype(np.int64)
        obs, rew, dones, infos = venv.step(actions)
        for i in range(4):
            final = infos[i]["terminal_observation"] if dones[i] else obs[i]
            term = bool(dones[i] and not infos[i]["TimeLimit.truncated"])
            terminated_seen |= term
            truncated_seen |= bool(dones[i] and infos[i]["TimeLimit.truncated"])
            bonus = final.argmax() / (length - 1)
            assert infos[i]["extrinsic_reward"] == float(term)
            assert np.isclose(infos[i]["intrinsic_reward"], coef * bonus)
            assert np.isclose(rew[i], float(term) + coef * bonus)  # env reward + coef * bonus
    assert terminated_seen and truncated_seen
    assert len(module.updates) == 5 and all(b.batch_shape == (6, 4) for b in module.updates)
    for b in module.updates:
        assert torch.equal(b.terminated, b.next_obs.argmax(-1) == length - 1)


def test_wrapper_replace_mode_and_finished_env_infos():
    venv = RewardModuleVecEnvWrapper(chain_venv(length=3), ConstantReward(2.0, routing=RewardRouting.REPLACE), coef=0.5)
    assert venv.mode == "replace"
    venv.reset()
    for _ in range(5):
        _, rew, dones, infos = venv.step(np.ones(4, dtype=np.int64))
        assert np.allclose(rew, 1.0)
        for i in np.flatnonzero(dones):
            assert infos[i]["extrinsic_reward"] == 1.0 and infos[i]["intrinsic_reward"] == 1.0


def test_dqn_runs_with_the_wrapper():
    module = ChainCount(5)
    venv = RewardModuleVecEnvWrapper(chain_venv(), module, coef=0.1, update_every=8)
    model = DQN("MlpPolicy", venv, learning_starts=16, train_freq=4, batch_size=16, buffer_size=500,
                seed=0, device="cpu")
    model.learn(total_timesteps=160)
    assert len(module.updates) == 5 and module.updates[0].batch_shape == (8, 4)
    assert float(module.counts.sum()) == 160
    assert "visits" in venv.last_metrics


class EpisodicChainCount(ChainCount):
    episodic, name = True, "episodic_count"


def test_intrinsic_mode_with_an_episodic_module():
    module = EpisodicChainCount(5)
    cb = RewardModuleCallback(module)
    assert cb.episodic
    PPO("MlpPolicy", chain_venv(max_steps=4), **PPO_KW).learn(64, callback=cb)
    adv = cb.last_int_advantages
    assert adv.shape == (16, 4) and bool(torch.isfinite(adv).all()) and bool(cb.last_batch.truncated.any())


class ActionMagnitude(RewardModule):
    """Box-action module: ``|a|`` of the executed (clipped) action."""

    name = "action_magnitude"

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[TransitionBatch] = []

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        assert batch.action.dtype == torch.float32 and batch.action.shape[-1] == 1
        return batch.action.abs().squeeze(-1)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        self.updates.append(batch)
        return {}


def test_sac_runs_with_the_wrapper_on_box_actions():
    module = ActionMagnitude()
    venv = RewardModuleVecEnvWrapper(SB3VecEnv(PointEnv(num_envs=2)), module, coef=0.5, normalize=False,
                                     update_every=10)
    model = SAC("MlpPolicy", venv, learning_starts=10, batch_size=16, buffer_size=200, seed=0, device="cpu",
                policy_kwargs=dict(net_arch=[16]))
    model.learn(total_timesteps=40)
    assert len(module.updates) == 2 and module.updates[0].action.shape == (10, 2, 1)
    assert venv.last_bonus.shape == (2,)


# ---------------------------------------------------------------------------------------------- CUDA
@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_module_with_cpu_learner():
    module = ChainCount(5, device="cuda")
    cb = RewardModuleCallback(module)
    PPO("MlpPolicy", chain_venv(device="cuda"), **PPO_KW).learn(64, callback=cb)
    assert cb.last_batch.device.type == "cuda" and cb.critic is not None
    assert next(cb.critic.parameters()).device.type == "cuda"
    assert module.updates[0].obs.device.type == "cuda"
    module2 = ChainCount(5, device="cuda")
    venv = RewardModuleVecEnvWrapper(chain_venv(device="cuda"), module2, update_every=4)
    DQN("MlpPolicy", venv, learning_starts=8, batch_size=8, buffer_size=100, seed=0, device="cuda").learn(32)
    assert module2.updates[0].next_obs.device.type == "cuda" and float(module2.counts.sum()) == 32


def test_callback_state_round_trip_and_normalize_defaults():
    cb = RewardModuleCallback(ChainCount(5))
    PPO("MlpPolicy", chain_venv(), **PPO_KW).learn(64, callback=cb)
    state = cb.state_dict()
    assert {"critic", "critic_optim", "normalizer"} <= set(state)
    fresh = RewardModuleCallback(ChainCount(5))
    fresh.load_state_dict(state)  # pending until learn builds the critic
    PPO("MlpPolicy", chain_venv(), **PPO_KW).learn(0, callback=fresh)
    for k, v in cb.critic.state_dict().items():
        assert torch.equal(fresh.critic.state_dict()[k], v)
    assert torch.equal(fresh.normalizer.stats.var, cb.normalizer.stats.var)
    self_normalizing = ConstantReward(1.0)
    self_normalizing.normalize = True  # e.g. IntrinsicReward(normalize=True)
    assert not RewardModuleCallback(self_normalizing).normalize
    assert not RewardModuleVecEnvWrapper(chain_venv(), self_normalizing).normalize
