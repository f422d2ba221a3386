"""dataset.relabel(reward_module): a reward designed elsewhere in the library, tested offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import envs.minigrid as mg
from rlcore.batch import TransitionBatch
from rlcore.data import DatasetError, TrajectoryDataset, collect, random_policy
from rlcore.reward import NonFiniteRewardError, RewardModule, RewardRouting

TASK = "MiniGrid-DoorKey-5x5-v0"


class Position(RewardModule):
    """Reward = the observation's first feature (to check the alignment of rewards with transitions)."""

    routing = RewardRouting.REPLACE

    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        return batch.next_obs[..., 0].float()


class Broken(RewardModule):
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        return torch.full(batch.reward.shape, float("nan"))


def _chain(n: int = 9) -> TrajectoryDataset:
    return TrajectoryDataset.from_arrays(observations=np.arange(n, dtype=np.float32)[:, None], actions=np.zeros(n, np.int64),
                                         rewards=np.ones(n, np.float32), terminals=[0, 0, 1, 0, 1, 0, 0, 0, 1])


@pytest.fixture(scope="module")
def minigrid_data():
    env = mg.make(TASK, num_envs=4, seed=0)
    return collect(env, random_policy(env.single_action_space, 4, env.device, torch.Generator().manual_seed(0)),
                   n_steps=300, seed=0, record_state=True)


@pytest.mark.parametrize("chunk", [2, 4, 100])
def test_relabel_replaces_or_adds_rewards_aligned_with_transitions(chunk):
    data = _chain()
    new = data.relabel(Position(), chunk_size=chunk)
    assert new.reward.tolist() == data.next_obs[:, 0].tolist()
    assert new.episode_return.tolist() == [1 + 2 + 2, 4 + 4, 6 + 7 + 8 + 8]  # next obs stay put at episode ends
    added = data.relabel(Position(), mode="add", coef=0.5, chunk_size=chunk)
    assert torch.allclose(added.reward, 1 + 0.5 * data.next_obs[:, 0])
    assert added.metadata["relabelled"]["mode"] == "add" and data.reward.tolist() == [1.0] * 9  # the original is kept


def test_relabel_with_an_episodic_bonus_sees_whole_episodes_in_order(minigrid_data):
    from rewards.intrinsic.episodic_counts import EpisodicCountBonus

    env = mg.make(TASK, num_envs=1)
    bonus = EpisodicCountBonus(env.single_observation_space, env.single_action_space, beta=1.0)
    # the same answer whatever the chunking: per-episode memory carries over chunks and resets at episode ends
    a = minigrid_data.relabel(bonus, chunk_size=17).reward
    bonus = EpisodicCountBonus(env.single_observation_space, env.single_action_space, beta=1.0)
    b = minigrid_data.relabel(bonus, chunk_size=100_000).reward
    assert torch.allclose(a, b)
    # memory resets at episode ends: each episode scores as if relabelled alone by a fresh module
    for e in range(min(6, minigrid_data.num_episodes)):
        alone = minigrid_data.select_episodes(torch.tensor([e]))
        fresh = EpisodicCountBonus(env.single_observation_space, env.single_action_space, beta=1.0)
        assert torch.allclose(alone.relabel(fresh).reward, a[minigrid_data.episode_id == e]), e
    assert float(a.min()) < 1.0  # revisits within an episode pay less


def test_relabel_with_compiled_reward_code_reads_the_recorded_state(minigrid_data):
    from rewards.llm.reward_module import CodeReward

    code = (
        "import torch\n"
        "def compute_reward(state, action, next_state):\n"
        "    picked = (next_state['carrying'][:, 0] == 5).float() * (state['carrying'][:, 0] != 5).float()\n"
        "    return picked, {'picked': picked}\n")
    env = mg.make(TASK, num_envs=1)
    module = CodeReward(env.single_observation_space, env.single_action_space, code=code)
    new = minigrid_data.relabel(module)
    carrying_key_now = minigrid_data.next_state["carrying"][:, 0] == 5
    carried_before = minigrid_data.state["carrying"][:, 0] == 5
    assert torch.equal(new.reward, (carrying_key_now & ~carried_before).float())
    without_state = TrajectoryDataset.from_arrays(observations=minigrid_data.obs, actions=minigrid_data.action,
                                                  rewards=minigrid_data.reward, terminals=minigrid_data.terminated,
                                                  timeouts=minigrid_data.truncated)
    with pytest.raises(DatasetError, match="reward module 'CodeReward' reads privileged state.*record_state=True"):
        without_state.relabel(module)


def test_relabel_refuses_bad_modules_and_arguments():
    data = _chain()
    with pytest.raises(NonFiniteRewardError, match="'Broken'"):
        data.relabel(Broken())
    with pytest.raises(ValueError, match="relabel mode must be 'replace' or 'add'"):
        data.relabel(Position(), mode="intrinsic")
