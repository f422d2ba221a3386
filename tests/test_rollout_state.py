"""Privileged state in rollouts: ``info["final_state"]`` of the envs, ``state``/``next_state`` in PPO's
batches and in the SB3 bridges, for reward modules with ``needs_state``."""

from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs.minigrid as mg
from algorithms.ppo import PPO
from rlcore.adapters.gymnasium import make_gym_env
from rlcore.adapters.sb3 import SB3VecEnv
from rlcore.adapters.sb3_rewards import RewardModuleCallback, RewardModuleVecEnvWrapper
from rlcore.batch import TransitionBatch
from rlcore.reward import RewardModule, RewardRouting
from rlcore.rollout import RolloutStorage

LEFT, RIGHT, FORWARD = 0, 1, 2
#: Empty-5x5: the agent starts at (1, 1) facing right; the goal is at (3, 3)
TO_GOAL = [FORWARD, FORWARD, RIGHT, FORWARD, FORWARD]


class StateRecorder(RewardModule):
    """Extrinsic module returning the env's reward; keeps a copy of every batch's states it is given."""

    routing, name = RewardRouting.REPLACE, "state_recorder"

    def __init__(self, needs_state: bool = True, state_keys: Optional[Sequence[str]] = None) -> None:
        super().__init__()
        self.needs_state = needs_state
        self.state_keys = state_keys
        self.computed: list[TransitionBatch] = []
        self.updated: list[TransitionBatch] = []

    @staticmethod
    def _keep(batch: TransitionBatch) -> TransitionBatch:
        return batch.map(lambda x: x.clone())

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        self.computed.append(self._keep(batch))
        return batch.reward.clone()

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        self.updated.append(self._keep(batch))
        return {}


def _flat_params(model: PPO) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.policy.parameters()])


def _scripted(n: int) -> list[torch.Tensor]:
    """Env 0 walks to the goal (terminated at step 5); the others turn left on the spot."""
    return [torch.tensor([a] + [LEFT] * (n - 1)) for a in TO_GOAL]


# ------------------------------------------------------------------------------------------ envs
@pytest.mark.parametrize("reset_mode", ["where", "index"])
def test_batched_minigrid_final_state_on_success(reset_mode):
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=3, seed=0, reset_mode=reset_mode)
    env.reset(seed=0)
    _, _, _, _, info = env.step(torch.tensor([LEFT, LEFT, LEFT]))
    assert "final_state" not in info  # off by default
    env.record_final_state = True
    env.reset(seed=0)
    for t, a in enumerate(_scripted(3)):
        _, _, terminated, _, info = env.step(a)
        final, now = info["final_state"], env.get_state()
        assert sorted(final) == sorted(now)
        assert env.final_state is final
        if t < 4:
            assert not terminated.any()
            for k in now:
                assert torch.equal(final[k], now[k]), k
    assert terminated.tolist() == [True, False, False]
    assert final["agent_pos"][0].tolist() == [3, 3] == final["goal_pos"][0].tolist()
    assert final["step_count"][0] == 5 and now["step_count"][0] == 0
    assert now["agent_pos"][0].tolist() == [1, 1]
    for k in now:  # rows that did not finish equal the current state
        assert torch.equal(final[k][1:], now[k][1:]), k
    # a snapshot: later steps (and their in-place grid updates) leave it alone
    kept = {k: v.clone() for k, v in final.items()}
    for _ in range(3):
        env.step(torch.tensor([FORWARD, FORWARD, FORWARD]))
    for k in kept:
        assert torch.equal(final[k], kept[k]), k


def test_batched_minigrid_final_state_on_truncation_and_same_trajectory():
    plain = mg.make("MiniGrid-DoorKey-5x5-v0", num_envs=4, seed=1)
    rec = mg.make("MiniGrid-DoorKey-5x5-v0", num_envs=4, seed=1)
    rec.record_final_state = True
    for env in (plain, rec):
        env.max_steps = 6
        env.reset(seed=1)
    g = torch.Generator().manual_seed(0)
    for t in range(13):
        a = torch.randint(0, 7, (4,), generator=g)
        o1, r1, te1, tr1, _ = plain.step(a)
        o2, r2, te2, tr2, info = rec.step(a)
        for k in o1:  # recording changes nothing in the trajectory
            assert torch.equal(o1[k], o2[k])
        assert torch.equal(r1, r2) and torch.equal(te1, te2) and torch.equal(tr1, tr2)
        steps = info["final_state"]["step_count"]
        assert torch.equal(steps[tr2], torch.full_like(steps[tr2], 6))
        if t == 5:
            assert tr2.any()


def test_gym_adapter_minigrid_final_state():
    env = make_gym_env("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0)
    _, _, _, _, info = env.step(torch.tensor([LEFT, LEFT]))
    assert "final_state" not in info
    env.reset(seed=0)
    env.record_final_state = True
    for t, a in enumerate(_scripted(2)):
        _, _, terminated, _, info = env.step(a)
        final, now = info["final_state"], env.get_state()
        if t < 4:
            assert not terminated.any()
            assert all(torch.equal(final[k], now[k]) for k in now)
    assert terminated.tolist() == [True, False]
    assert final["agent_pos"][0].tolist() == [3, 3] and now["agent_pos"][0].tolist() == [1, 1]
    assert final["agent_pos"].dtype == now["agent_pos"].dtype == torch.int64
    assert torch.equal(final["agent_dir"][1:], now["agent_dir"][1:])
    env.close()


def test_gym_adapter_mujoco_final_state():
    pytest.importorskip("mujoco")
    import gymnasium as gym

    env = make_gym_env("HalfCheetah-v5", num_envs=2, seed=0, max_episode_steps=3)
    env.record_final_state = True
    actions = torch.linspace(-1, 1, 12).reshape(2, 6)
    for _ in range(3):
        _, _, _, truncated, info = env.step(actions)
    assert truncated.all()
    ref = gym.make("HalfCheetah-v5")  # env 0 of the batch, replayed alone
    ref.reset(seed=0)
    for _ in range(3):
        ref.step(actions[0].numpy())
    sv = ref.unwrapped.state_vector()
    nq = ref.unwrapped.init_qpos.shape[0]
    final, now = info["final_state"], env.get_state()
    assert final["qpos"].shape == now["qpos"].shape and final["qvel"].shape == now["qvel"].shape
    assert torch.allclose(final["qpos"][0], torch.as_tensor(sv[:nq], dtype=torch.float32), atol=1e-6)
    assert torch.allclose(final["qvel"][0], torch.as_tensor(sv[nq:], dtype=torch.float32), atol=1e-6)
    assert not torch.allclose(final["qpos"], now["qpos"])  # the new episodes started elsewhere
    ref.close()
    env.close()


# ------------------------------------------------------------------------------------------- PPO
def _doorkey(n: int = 4, max_steps: int = 10) -> mg.BatchedMiniGrid:
    env = mg.make("MiniGrid-DoorKey-5x5-v0", num_envs=n, seed=0)
    env.max_steps = max_steps  # episodes end inside a short rollout
    return env


def test_ppo_rollout_state_and_next_state():
    T, N = 24, 4
    env = _doorkey(N)
    module = StateRecorder()
    PPO(env, n_steps=T, n_minibatches=2, n_epochs=1, reward_module=module, seed=0).learn(2 * T * N)
    assert env.record_final_state
    assert len(module.computed) == 2 and len(module.updated) == 2
    now = env.get_state()
    batch = module.computed[0]
    assert sorted(batch.state) == sorted(batch.next_state) == sorted(now)
    for k, v in now.items():
        assert batch.state[k].shape == batch.next_state[k].shape == (T, N, *v.shape[1:]), k
        assert batch.state[k].dtype == v.dtype
    done = batch.done
    assert done.any() and (~done).any()
    for t in range(T - 1):
        keep = ~done[t]
        for k in now:  # where no episode ended, next_state is the next step's state
            assert torch.equal(batch.next_state[k][t][keep], batch.state[k][t + 1][keep]), k
    # where one ended: the final state of that episode, then the new episode's first state
    steps, nsteps = batch.state["step_count"], batch.next_state["step_count"]
    assert torch.equal(nsteps, steps + 1)
    assert torch.equal(nsteps[batch.truncated], torch.full_like(nsteps[batch.truncated], 10))
    assert (steps[1:][done[:-1]] == 0).all()
    pos, goal = batch.next_state["agent_pos"], batch.next_state["goal_pos"]
    assert torch.equal(pos[batch.terminated], goal[batch.terminated])
    # the rollout continues across iterations: the second one starts where the first stopped
    second = module.updated[1]
    assert torch.equal(second.state["step_count"][0], torch.where(done[-1], 0, nsteps[-1]))
    for k in now:
        assert torch.equal(module.updated[0].next_state[k], batch.next_state[k])


def test_ppo_state_keys_restrict_what_is_stored():
    env = _doorkey()
    module = StateRecorder(state_keys=["agent_pos", "step_count"])
    model = PPO(env, n_steps=8, n_minibatches=2, n_epochs=1, reward_module=module, seed=0)
    model.learn(32)
    assert sorted(module.computed[0].state) == sorted(model.storage.next_states) == ["agent_pos", "step_count"]
    with pytest.raises(KeyError, match="no_such_key"):
        PPO(_doorkey(), n_steps=8, reward_module=StateRecorder(state_keys=["no_such_key"]), seed=0).learn(32)


def test_ppo_without_needs_state_is_unchanged():
    kw = dict(n_steps=16, n_minibatches=2, n_epochs=2, seed=3)
    without = StateRecorder(needs_state=False)
    a = PPO(_doorkey(), reward_module=without, **kw).learn(3 * 16 * 4)
    b = PPO(_doorkey(), reward_module=StateRecorder(needs_state=True), **kw).learn(3 * 16 * 4)
    c = PPO(_doorkey(), **kw).learn(3 * 16 * 4)
    assert all(batch.state is None and batch.next_state is None for batch in without.computed + without.updated)
    assert a.storage.states is None and not a.env.record_final_state
    # recording state changes nothing in training; an identity reward module trains like none
    assert torch.equal(_flat_params(a), _flat_params(b))
    assert torch.equal(_flat_params(a), _flat_params(c))


def test_storage_rejects_changing_keys():
    env = _doorkey()
    storage = RolloutStorage(2, 4, env.single_observation_space, env.single_action_space, 1, env.device)
    storage.insert_state(0, {"agent_pos": torch.zeros(4, 2, dtype=torch.int64)})
    with pytest.raises(ValueError, match="keys changed"):
        storage.insert_state(1, {"agent_dir": torch.zeros(4, dtype=torch.int64)})


def test_ppo_names_the_module_when_the_env_gives_no_final_state():
    from toy_envs import ChainEnv

    class StatelessChain(ChainEnv):
        def get_state(self):
            return {}

    module = StateRecorder()  # ChainEnv has get_state() but does not implement record_final_state
    with pytest.raises(RuntimeError, match="state_recorder.*final_state"):
        PPO(ChainEnv(num_envs=2), n_steps=4, reward_module=module, seed=0).learn(8)
    # an env without privileged state gives empty dicts
    module = StateRecorder()
    PPO(StatelessChain(num_envs=2), n_steps=4, n_minibatches=1, n_epochs=1, reward_module=module, seed=0).learn(8)
    assert module.computed[0].state == {} and module.computed[0].next_state == {}


# ------------------------------------------------------------------------------------------- SB3
def test_sb3_wrapper_passes_state_and_final_state():
    module = StateRecorder(state_keys=["agent_pos", "goal_pos", "step_count"])
    venv = RewardModuleVecEnvWrapper(SB3VecEnv(mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0)), module,
                                     normalize=False, update_every=5)
    venv.reset()
    for a in _scripted(2):
        _, _, dones, _ = venv.step(a.numpy())
    assert dones.tolist() == [True, False]
    last = module.computed[-1]
    assert last.state["agent_pos"].shape == (1, 2, 2)
    assert last.next_state["agent_pos"][0, 0].tolist() == [3, 3] == last.next_state["goal_pos"][0, 0].tolist()
    assert last.state["agent_pos"][0, 0].tolist() == [3, 2]
    assert len(module.updated) == 1
    upd = module.updated[0]
    assert upd.state["step_count"].shape == (5, 2)
    assert torch.equal(upd.next_state["step_count"], upd.state["step_count"] + 1)
    assert torch.equal(upd.next_state["agent_pos"][:-1], upd.state["agent_pos"][1:])
    # after the reset the next batch starts from the new episode
    venv.step(np.array([LEFT, LEFT]))
    assert module.computed[-1].state["step_count"].tolist() == [[0, 5]]


def test_sb3_wrapper_without_needs_state_records_nothing():
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=2, seed=0)
    module = StateRecorder(needs_state=False)
    venv = RewardModuleVecEnvWrapper(SB3VecEnv(env), module, normalize=False, update_every=2)
    venv.reset()
    for _ in range(2):
        venv.step(np.array([LEFT, FORWARD]))
    assert not env.record_final_state
    assert all(b.state is None and b.next_state is None for b in module.computed + module.updated)


def test_sb3_callback_passes_state():
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class Flat(BaseFeaturesExtractor):
        def __init__(self, space):
            super().__init__(space, gym.spaces.flatdim(space))

        def forward(self, obs):
            return torch.cat([v.flatten(1).float() for v in obs.values()], dim=1)

    env = mg.make("MiniGrid-DoorKey-5x5-v0", num_envs=2, seed=0)
    env.max_steps = 5
    module = StateRecorder(state_keys=["agent_pos", "step_count"])
    model = SB3PPO("MultiInputPolicy", SB3VecEnv(env), n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu",
                   policy_kwargs=dict(features_extractor_class=Flat, normalize_images=False))
    model.learn(total_timesteps=32, callback=RewardModuleCallback(module, normalize=False))
    assert len(module.computed) == 2
    for batch in module.computed:
        assert batch.state["agent_pos"].shape == (8, 2, 2)
        steps, nsteps = batch.state["step_count"], batch.next_state["step_count"]
        assert torch.equal(nsteps, steps + 1)
        assert torch.equal(nsteps[batch.truncated], torch.full_like(nsteps[batch.truncated], 5))
        assert batch.truncated.any()
        keep = ~batch.done[:-1]
        assert torch.equal(batch.next_state["agent_pos"][:-1][keep], batch.state["agent_pos"][1:][keep])
