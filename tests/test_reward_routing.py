"""One reward routing (rlcore.reward.RewardRouting): parsing, the shared helper, and the same rewards in
native PPO and both SB3 bridges for ADD and REPLACE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO as SB3PPO
from toy_envs import ChainEnv

import algorithms.ppo as ppo_module
from algorithms.ppo import PPO
from rlcore.adapters.sb3 import SB3VecEnv
from rlcore.adapters.sb3_rewards import RewardModuleCallback, RewardModuleVecEnvWrapper
from rlcore.batch import TransitionBatch
from rlcore.reward import RewardModule, RewardRouting, parse_routing, route_reward, routing_of

LENGTH = 5


class PositionReward(RewardModule):
    """Deterministic reward of the reached chain position: ``0.25 * pos(next_obs) - 0.3``."""

    name = "position_reward"

    def __init__(self, routing: RewardRouting) -> None:
        super().__init__()
        self.routing = routing
        self.seen: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (env reward, pos, module reward)

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        pos = batch.next_obs.argmax(-1)
        out = 0.25 * pos.float() - 0.3
        self.seen.append((batch.reward.clone(), pos.clone(), out.clone()))
        return out


# ---------------------------------------------------------------------------------------------- parsing
def test_parse_routing_accepts_the_enum_and_its_values_and_names_bad_ones():
    for routing in RewardRouting:
        assert parse_routing(routing) is routing and parse_routing(routing.value) is routing
    assert RewardRouting.ADD == "add" and str(RewardRouting.REPLACE) == "replace"
    with pytest.raises(ValueError, match=r"routing must be one of 'intrinsic', 'add', 'replace'; got 'mix'"):
        parse_routing("mix")
    with pytest.raises(ValueError, match=r"'separate_value' is now 'intrinsic'"):
        parse_routing("separate_value")
    with pytest.raises(ValueError, match=r"my mode must be one of 'add', 'replace'; got 'intrinsic'"):
        parse_routing("intrinsic", (RewardRouting.ADD, "replace"), name="my mode")
    with pytest.raises(ValueError, match="got 3"):
        parse_routing(3)


def test_routing_of_a_module_and_the_removed_flag():
    class Bonus(RewardModule):
        def compute(self, batch):
            return batch.reward

    class Old(Bonus):
        intrinsic = False

    class Bad(Bonus):
        routing = "separate"

    assert routing_of(Bonus()) is RewardRouting.INTRINSIC
    assert routing_of(torch.nn.Identity()) is RewardRouting.INTRINSIC  # no attribute: a bonus
    with pytest.raises(TypeError, match="replaced by 'routing'"):
        routing_of(Old())
    with pytest.raises(ValueError, match="reward module 'Bad' routing .*'separate'"):
        routing_of(Bad())
    with pytest.raises(TypeError, match="replaced by 'routing'"):
        PPO(ChainEnv(), n_steps=8, reward_module=Old())


def test_route_reward():
    env, mod = torch.tensor([1.0, 0.0, -2.0]), torch.tensor([0.5, 2.0, 1.0])
    assert torch.equal(route_reward(RewardRouting.ADD, env, mod), env + mod)
    assert torch.equal(route_reward("add", env, mod, coef=0.5), env + 0.5 * mod)
    assert torch.equal(route_reward(RewardRouting.REPLACE, env, mod, coef=2.0), 2.0 * mod)
    assert route_reward("replace", env, mod) is mod  # coef 1: the module's tensor itself, bit-identical
    assert route_reward(RewardRouting.INTRINSIC, env, mod) is env
    with pytest.raises(ValueError, match="'bogus'"):
        route_reward("bogus", env, mod)


def test_bridges_parse_their_mode():
    module = PositionReward(RewardRouting.ADD)
    assert RewardModuleCallback(module).mode is RewardRouting.ADD  # default: the module's routing
    assert RewardModuleCallback(module, mode=RewardRouting.INTRINSIC).mode == "intrinsic"
    with pytest.raises(ValueError, match=r"RewardModuleCallback mode .*'add_to_reward' is now 'add'"):
        RewardModuleCallback(module, mode="add_to_reward")
    venv = SB3VecEnv(ChainEnv(num_envs=2, length=LENGTH))
    with pytest.raises(ValueError, match=r"RewardModuleVecEnvWrapper mode must be one of 'add', 'replace'; got 'intrinsic'"):
        RewardModuleVecEnvWrapper(venv, module, mode="intrinsic")
    assert RewardModuleVecEnvWrapper(venv, PositionReward(RewardRouting.INTRINSIC)).mode is RewardRouting.ADD
    assert RewardModuleVecEnvWrapper(venv, PositionReward(RewardRouting.REPLACE)).mode is RewardRouting.REPLACE


def test_code_reward_routing():
    import envs.minigrid as mg
    from rewards.llm.reward_module import CodeReward

    code = "def compute_reward(state, action, next_state):\n    return action.float() * 0, {}\n"
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=1, seed=0)
    spaces = (env.single_observation_space, env.single_action_space)
    assert CodeReward(*spaces, code=code).routing is RewardRouting.REPLACE
    assert CodeReward(*spaces, code=code, routing=RewardRouting.ADD).routing is RewardRouting.ADD
    with pytest.raises(TypeError, match="mode"):
        CodeReward(*spaces, code=code, mode="add")  # one way to say it: routing=
    with pytest.raises(ValueError, match=r"CodeReward routing must be one of 'replace', 'add'; got 'intrinsic'"):
        CodeReward(*spaces, code=code, routing="intrinsic")


# ---------------------------------------------------------------------------------------------- learners
def _ppo_rewards(routing: RewardRouting, monkeypatch) -> tuple[list[dict], PositionReward, list[torch.Tensor]]:
    """Two PPO iterations; returns the logs, the module and the rewards the extrinsic GAE received."""
    gae_rewards: list[torch.Tensor] = []
    original = ppo_module.compute_gae

    def spy(rewards, *args, **kwargs):
        gae_rewards.append(rewards.clone())
        return original(rewards, *args, **kwargs)

    monkeypatch.setattr(ppo_module, "compute_gae", spy)
    module = PositionReward(routing)
    log: list[dict] = []
    model = PPO(ChainEnv(num_envs=4, length=LENGTH, max_steps=6), n_steps=16, n_epochs=1, n_minibatches=2, seed=0,
                reward_module=module)
    assert model.num_value_streams == 1
    model.learn(2 * 16 * 4, callback=lambda m, _: log.append(m))
    return log, module, gae_rewards


@pytest.mark.parametrize("routing", [RewardRouting.ADD, RewardRouting.REPLACE])
def test_add_and_replace_in_native_ppo(routing, monkeypatch):
    log, module, gae_rewards = _ppo_rewards(routing, monkeypatch)
    assert len(module.seen) == len(gae_rewards) == len(log) == 2
    for (env_r, _, out), got, metrics in zip(module.seen, gae_rewards, log):
        expected = env_r + out if routing is RewardRouting.ADD else out
        assert torch.equal(got, expected)
        assert metrics["reward/module_mean"] == pytest.approx(float(out.mean()), abs=1e-6)
        if routing is RewardRouting.ADD:
            assert metrics["reward/total_mean"] == pytest.approx(float((env_r + out).mean()), abs=1e-6)
            assert float(env_r.abs().sum()) > 0  # the env reward really is in the total
        else:
            assert "reward/total_mean" not in metrics


def _table(env_r: torch.Tensor, pos: torch.Tensor, routed: torch.Tensor) -> dict[tuple[float, int], float]:
    """(env reward, reached position) -> routed reward, checked to be a function."""
    out: dict[tuple[float, int], float] = {}
    for e, p, r in zip(env_r.reshape(-1).tolist(), pos.reshape(-1).tolist(), routed.reshape(-1).tolist()):
        key = (float(e), int(p))
        assert out.setdefault(key, r) == pytest.approx(r, abs=1e-6)
    return out


@pytest.mark.parametrize("routing", [RewardRouting.ADD, RewardRouting.REPLACE])
def test_the_same_module_gets_the_same_rewards_in_ppo_and_both_sb3_bridges(routing, monkeypatch):
    _, ppo_mod, gae_rewards = _ppo_rewards(routing, monkeypatch)
    ppo_table = _table(ppo_mod.seen[0][0], ppo_mod.seen[0][1], gae_rewards[0])

    # SB3 callback: the buffer the loss sees (truncated steps also carry SB3's gamma * V(terminal_obs))
    cb_mod = PositionReward(routing)
    cb = RewardModuleCallback(cb_mod, normalize=False)
    assert cb.mode is routing
    captured = {}

    class Capture(SB3PPO):
        def train(self) -> None:
            captured.setdefault("rewards", np.array(self.rollout_buffer.rewards))
            super().train()

    Capture("MlpPolicy", SB3VecEnv(ChainEnv(num_envs=4, length=LENGTH, max_steps=6)), n_steps=16, batch_size=32,
            n_epochs=1, seed=0, device="cpu").learn(64, callback=cb)
    env_r, pos, out = cb_mod.seen[0]
    keep = ~cb.last_batch.truncated
    buffer = torch.as_tensor(captured["rewards"])
    assert torch.allclose(buffer[keep], route_reward(routing, env_r, out)[keep])
    cb_table = _table(env_r[keep], pos[keep], buffer[keep])

    # SB3 VecEnvWrapper: the reward every step returns
    wr_mod = PositionReward(routing)
    venv = RewardModuleVecEnvWrapper(SB3VecEnv(ChainEnv(num_envs=4, length=LENGTH, max_steps=6)), wr_mod,
                                     normalize=False, update_every=0)
    assert venv.mode is routing
    venv.reset()
    rng = np.random.default_rng(0)
    returned = []
    for _ in range(40):
        _, rew, _, _ = venv.step((rng.random(4) < 0.7).astype(np.int64))
        returned.append(torch.as_tensor(rew))
    env_w = torch.cat([s[0] for s in wr_mod.seen])
    pos_w = torch.cat([s[1] for s in wr_mod.seen])
    got = torch.stack(returned)
    assert torch.allclose(got, route_reward(routing, env_w, torch.cat([s[2] for s in wr_mod.seen])).reshape(got.shape))
    wr_table = _table(env_w, pos_w, got)

    # one function of (env reward, position) across the three learners, on every pair two of them saw
    for a, b in ((ppo_table, cb_table), (ppo_table, wr_table), (cb_table, wr_table)):
        shared = set(a) & set(b)
        assert shared
        assert all(a[k] == pytest.approx(b[k], abs=1e-6) for k in shared)
    if routing is RewardRouting.ADD:  # the terminal step's env reward (1) is in the total
        assert any(k[0] == 1.0 for k in set(ppo_table) | set(wr_table))
