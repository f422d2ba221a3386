"""Reward models (rlcore.reward_model): forward keeps gradients, compute does not; running normalisation;
potential-based shaping (Ng, Harada & Russell 1999); checkpointing; use inside native PPO and SB3."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from toy_envs import ChainEnv

from algorithms.ppo import PPO
from rlcore.batch import TransitionBatch
from rlcore.reward import RewardModule, RewardRouting, routing_of
from rlcore.reward_model import NormalizedReward, PotentialShaping, RewardModel


class LinearReward(RewardModel):
    """A learnable reward ``w . next_obs + b``; ``update`` regresses it onto the env's reward."""

    name = "linear_reward"

    def __init__(self, dim: int, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.linear = nn.Linear(dim, 1)
        self.opt = torch.optim.SGD(self.parameters(), lr=0.1)
        self.updates = 0

    def forward(self, batch: TransitionBatch) -> torch.Tensor:
        return self.linear(batch.next_obs).squeeze(-1)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        loss = (self(batch) - batch.reward).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.updates += 1
        return {"loss": float(loss.detach())}


class EnvReward(RewardModule):
    """The env's own reward as a module (what shaping of the task reward wraps)."""

    routing, name = RewardRouting.REPLACE, "env_reward"

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        return batch.reward.float()


class MemoryBonus(RewardModule):
    """Episodic bonus stand-in with state keys: records resets and updates."""

    episodic, needs_state, state_keys, name = True, True, ["pos"], "memory"

    def __init__(self) -> None:
        super().__init__()
        self.resets: list[torch.Tensor] = []
        self.updated = 0

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        return torch.ones(batch.batch_shape)

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        self.updated += 1
        return {"seen": 1.0}

    def reset(self, mask: torch.Tensor) -> None:
        self.resets.append(mask.clone())


class DictPotential(nn.Module):
    """Phi on a dict observation: ``x . w + 10 * flag``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(dim, generator=torch.Generator().manual_seed(1)))

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return obs["x"] @ self.w + 10.0 * obs["flag"].float()


def _batch(T: int = 5, N: int = 3, D: int = 4, seed: int = 0) -> TransitionBatch:
    g = torch.Generator().manual_seed(seed)
    return TransitionBatch(obs=torch.randn(T, N, D, generator=g), action=torch.zeros(T, N, dtype=torch.long),
                           reward=torch.randn(T, N, generator=g), next_obs=torch.randn(T, N, D, generator=g),
                           terminated=torch.rand(T, N, generator=g) < 0.3, truncated=torch.zeros(T, N, dtype=torch.bool))


def _episode(T: int, D: int, end: str, seed: int = 0) -> tuple[TransitionBatch, torch.Tensor]:
    """One episode ``s_0 .. s_T`` as a ``[T, 1]`` batch ending in ``end`` ("terminated"/"truncated")."""
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(T + 1, 1, D, generator=g)
    last = torch.zeros(T, 1, dtype=torch.bool)
    last[-1] = True
    none = torch.zeros(T, 1, dtype=torch.bool)
    batch = TransitionBatch(obs=states[:-1], action=torch.zeros(T, 1, dtype=torch.long),
                            reward=torch.randn(T, 1, generator=g), next_obs=states[1:],
                            terminated=last if end == "terminated" else none,
                            truncated=last if end == "truncated" else none)
    return batch, states


# ---------------------------------------------------------------------------------------------- contract
def test_forward_keeps_gradients_and_compute_does_not():
    batch = _batch()
    model = LinearReward(4)
    out = model(batch)
    assert out.shape == (5, 3) and out.requires_grad
    out.sum().backward()
    assert model.linear.weight.grad is not None and model.linear.weight.grad.abs().sum() > 0
    scored = model.compute(batch)
    assert scored.shape == (5, 3) and not scored.requires_grad and scored.grad_fn is None
    assert torch.allclose(scored, out.detach())
    assert routing_of(model) is RewardRouting.REPLACE  # learned rewards replace the env's by default


def test_gradients_flow_through_both_wrappers_to_the_inner_model_and_the_potential():
    batch = _batch()
    inner, phi = LinearReward(4), nn.Linear(4, 1)
    model = NormalizedReward(PotentialShaping(inner, phi, gamma=0.9))
    model.compute(batch)  # give the statistics a non-trivial std
    out = model(batch)
    assert out.shape == (5, 3) and out.requires_grad
    out.pow(2).sum().backward()
    for p in (inner.linear.weight, phi.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    scored = model.compute(batch)
    assert not scored.requires_grad and scored.grad_fn is None


def test_a_plain_reward_module_is_scored_with_compute():
    batch = _batch()
    shaped = PotentialShaping(EnvReward(), nn.Linear(4, 1), gamma=0.5)
    phi, phi_next = shaped.potentials(batch)
    expected = batch.reward + 0.5 * phi_next - phi
    assert torch.allclose(shaped.compute(batch), expected)
    assert torch.equal(phi_next[batch.terminated], torch.zeros(int(batch.terminated.sum())))


# ---------------------------------------------------------------------------------------------- shaping
@pytest.mark.parametrize("end", ["terminated", "truncated"])
def test_shaping_telescopes_over_one_episode(end):
    T, D = 7, 3
    batch, states = _episode(T, D, end)
    phi = nn.Linear(D, 1)
    shaped = PotentialShaping(EnvReward(), phi, gamma=1.0)
    total = shaped.compute(batch).sum()
    with torch.no_grad():
        phi_0, phi_T = phi(states[0, 0]).squeeze(), phi(states[-1, 0]).squeeze()
    # terminated: Phi(s_T) = 0 (absorbing); truncated: the true Phi(s_T) stays
    expected = batch.reward.sum() - phi_0 + (phi_T if end == "truncated" else 0.0)
    assert torch.allclose(total, expected, atol=1e-5)
    assert not torch.allclose(total, batch.reward.sum(), atol=1e-3)  # the shaping term is not trivially zero


def test_shaping_of_step_batches_matches_the_rollout_and_handles_dict_observations():
    T, N, D = 6, 4, 3
    g = torch.Generator().manual_seed(2)
    obs = {"x": torch.randn(T, N, D, generator=g), "flag": torch.rand(T, N, generator=g) < 0.5}
    nxt = {"x": torch.randn(T, N, D, generator=g), "flag": torch.rand(T, N, generator=g) < 0.5}
    batch = TransitionBatch(obs=obs, action=torch.zeros(T, N, dtype=torch.long), reward=torch.randn(T, N, generator=g),
                            next_obs=nxt, terminated=torch.rand(T, N, generator=g) < 0.3,
                            truncated=torch.rand(T, N, generator=g) < 0.3)
    shaped = PotentialShaping(EnvReward(), DictPotential(D), gamma=0.99)
    rollout = shaped.compute(batch)
    assert rollout.shape == (T, N)
    steps = torch.stack([shaped.compute(batch.map(lambda x, t=t: x[t])) for t in range(T)])  # [N] batches
    assert torch.allclose(rollout, steps, atol=1e-6)
    pot = DictPotential(D)
    with torch.no_grad():
        phi_s = pot(obs)
        phi_next = torch.where(batch.terminated, torch.zeros(()), pot(nxt))
    assert torch.allclose(rollout, batch.reward + 0.99 * phi_next - phi_s, atol=1e-5)


def test_shaping_rejects_a_bad_gamma():
    with pytest.raises(ValueError, match="gamma"):
        PotentialShaping(EnvReward(), nn.Linear(2, 1), gamma=1.5)


# ---------------------------------------------------------------------------------------------- normalisation
def test_normalised_stream_has_zero_mean_and_unit_std():
    g = torch.Generator().manual_seed(0)
    model = NormalizedReward(EnvReward())
    outs, raws = [], []
    for _ in range(50):
        reward = 1000.0 + 50.0 * torch.randn(16, 8, generator=g)
        batch = TransitionBatch(obs=torch.zeros(16, 8, 1), action=torch.zeros(16, 8, dtype=torch.long), reward=reward,
                                next_obs=torch.zeros(16, 8, 1), terminated=torch.zeros(16, 8, dtype=torch.bool),
                                truncated=torch.zeros(16, 8, dtype=torch.bool))
        raws.append(reward)
        outs.append(model.compute(batch))
    out = torch.cat(outs[5:])
    assert abs(float(out.mean())) < 0.05 and abs(float(out.std()) - 1.0) < 0.05
    assert abs(float(model.stats.mean) - 1000.0) < 2.0 and abs(float(model.stats.std) - 50.0) < 2.0
    # forward and eval() leave the statistics alone
    count = float(model.stats.count)
    model(batch)
    model.eval()
    frozen = model.compute(batch)
    assert float(model.stats.count) == count
    model.train()
    assert torch.allclose(frozen, (batch.reward - model.stats.mean.float()) / (model.stats.std.float() + 1e-8))
    # center=False only rescales
    scale_only = NormalizedReward(EnvReward(), center=False, clip=None)
    scaled = torch.cat([scale_only.compute(TransitionBatch(obs=batch.obs, action=batch.action, reward=r,
                                                           next_obs=batch.next_obs, terminated=batch.terminated,
                                                           truncated=batch.truncated)) for r in raws][5:])
    assert abs(float(scaled.std()) - 1.0) < 0.1 and float(scaled.mean()) > 15.0
    clipped = NormalizedReward(EnvReward(), clip=0.5)
    assert float(clipped.compute(batch).abs().max()) <= 0.5


# ---------------------------------------------------------------------------------------------- forwarding
def test_wrappers_forward_the_contract_to_the_inner_module():
    inner = MemoryBonus()
    model = NormalizedReward(PotentialShaping(inner, nn.Linear(4, 1)))
    assert routing_of(model) is RewardRouting.INTRINSIC and model.episodic and model.needs_state
    assert model.state_keys == ["pos"] and model.name == "memory" and model.normalize is True
    assert model.update(_batch()) == {"seen": 1.0} and inner.updated == 1
    mask = torch.tensor([True, False, True])
    model.reset(mask)
    assert len(inner.resets) == 1 and torch.equal(inner.resets[0], mask)
    assert routing_of(NormalizedReward(inner, routing="add")) is RewardRouting.ADD
    with pytest.raises(ValueError, match="'mix'"):
        NormalizedReward(inner, routing="mix")


def test_a_shaped_learned_reward_round_trips_through_state_dict():
    batch = _batch()
    model = NormalizedReward(PotentialShaping(LinearReward(4, seed=0), nn.Linear(4, 1), gamma=0.9))
    for seed in range(3):
        model.compute(_batch(seed=seed))
    model.inner.inner.update(batch)
    state = model.state_dict()
    assert {"stats.mean", "stats.var", "stats.count", "inner.potential.weight", "inner.inner.linear.weight"} <= set(state)
    torch.manual_seed(123)
    other = NormalizedReward(PotentialShaping(LinearReward(4, seed=7), nn.Linear(4, 1), gamma=0.9))
    other.eval()
    model.eval()
    assert not torch.allclose(other.compute(batch), model.compute(batch))
    other.load_state_dict(state)
    assert torch.equal(other.compute(batch), model.compute(batch))
    assert torch.equal(other.stats.count, model.stats.count)


# ---------------------------------------------------------------------------------------------- learners
def test_a_reward_model_trains_inside_native_ppo():
    env = ChainEnv(num_envs=4, length=5)
    inner = LinearReward(5)
    module = NormalizedReward(PotentialShaping(inner, nn.Linear(5, 1), gamma=0.99))
    log = []
    model = PPO(env, n_steps=16, n_epochs=1, n_minibatches=2, seed=0, reward_module=module)
    assert model.num_value_streams == 1  # REPLACE: the learned reward is the extrinsic stream's
    model.learn(3 * 16 * 4, callback=lambda m, _: log.append(m))
    assert len(log) == 3 and inner.updates == 3
    assert all(np.isfinite(m["reward/module_mean"]) and np.isfinite(m["reward/loss"]) for m in log)
    assert float(module.stats.count) > 3 * 16 * 4 - 1
    add = PPO(ChainEnv(num_envs=4, length=5), n_steps=16, n_epochs=1, n_minibatches=2, seed=0,
              reward_module=PotentialShaping(LinearReward(5), nn.Linear(5, 1), routing="add"))
    log = []
    add.learn(2 * 16 * 4, callback=lambda m, _: log.append(m))
    assert {"reward/module_mean", "reward/total_mean"} <= set(log[-1])


def test_a_reward_model_inside_the_sb3_callback():
    from stable_baselines3 import PPO as SB3PPO

    from rlcore.adapters.sb3 import SB3VecEnv
    from rlcore.adapters.sb3_rewards import RewardModuleCallback

    inner = LinearReward(5)
    module = PotentialShaping(inner, nn.Linear(5, 1), gamma=0.9)
    cb = RewardModuleCallback(module, normalize=False)
    assert cb.mode == "replace" and cb.log_prefix == "reward_model"
    model = SB3PPO("MlpPolicy", SB3VecEnv(ChainEnv(num_envs=4, length=5, max_steps=6)), n_steps=16, batch_size=32,
                   n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128, callback=cb)  # two rollouts of 16 x 4
    assert inner.updates == 2 and cb.last_reward.shape == (16, 4)
    assert np.isfinite(cb.last_metrics["linear_reward/loss"])
