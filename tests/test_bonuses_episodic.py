"""Episodic bonuses (E3B, NGU) and the IntrinsicReward combiner."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rewards.intrinsic.combine import IntrinsicReward
from rewards.intrinsic.e3b import E3B
from rewards.intrinsic.episodic_counts import EpisodicCountBonus
from rewards.intrinsic.ngu import NGUEpisodic
from rlcore.batch import TransitionBatch
from rlcore.reward import NonFiniteRewardError, RewardModule

L = 6
OBS = gym.spaces.Box(0.0, 1.0, (L,), np.float32)
ACT = gym.spaces.Discrete(2)


def chain_batch(positions, done=None) -> TransitionBatch:
    """A [T, N] batch whose next_obs are one-hot chain positions ``positions[t][i]``."""
    pos = torch.tensor(positions)
    T, N = pos.shape
    next_obs = torch.nn.functional.one_hot(pos, L).float()
    done = torch.zeros(T, N, dtype=torch.bool) if done is None else torch.tensor(done)
    return TransitionBatch(obs=torch.roll(next_obs, 1, 0), action=torch.zeros(T, N, dtype=torch.long),
                           reward=torch.zeros(T, N), next_obs=next_obs, terminated=done,
                           truncated=torch.zeros(T, N, dtype=torch.bool))


def test_e3b_one_hot_gives_inverse_ridge_plus_count():
    bonus = E3B(OBS, ACT, ridge=0.1, embedding=lambda x: x)
    # env 0 reaches state 2 three times, env 1 alternates states 3 and 4. The first step of an
    # episode (C still lambda * I) scores 0, as in the original, but its state enters C.
    b = bonus.compute(chain_batch([[2, 3], [2, 4], [2, 3], [5, 3]]))
    expected = torch.tensor([[0.0, 0.0], [1 / 1.1, 1 / 0.1], [1 / 2.1, 1 / 1.1], [1 / 0.1, 1 / 2.1]])
    assert torch.allclose(b, expected, rtol=1e-5)
    # memory carries over to the next rollout: state 2 was seen 3 times this episode
    assert torch.allclose(bonus.compute(chain_batch([[2, 4]]))[0], torch.tensor([1 / 3.1, 1 / 1.1]), rtol=1e-5)


def test_e3b_resets_only_envs_whose_episode_ended():
    bonus = E3B(OBS, ACT, ridge=0.1, embedding=lambda x: x)
    b = bonus.compute(chain_batch([[2, 2], [2, 2], [2, 2]], done=[[False, False], [True, False], [False, False]]))
    assert torch.allclose(b[2], torch.tensor([0.0, 1 / 2.1]), rtol=1e-5)  # env 0's new episode: first step
    bonus.reset(torch.tensor([False, True]))
    assert torch.allclose(bonus.compute(chain_batch([[2, 2]]))[0], torch.tensor([1 / 1.1, 0.0]), rtol=1e-5)
    # after its zeroed first step env 1 scores against that step's state again
    assert torch.allclose(bonus.compute(chain_batch([[2, 3]]))[0], torch.tensor([1 / 2.1, 1 / 0.1]), rtol=1e-5)


def test_e3b_first_step_is_zero_only_on_fresh_memory():
    bonus = E3B(OBS, ACT, ridge=0.1, embedding=lambda x: x)
    # a done at the last step of one rollout makes the first step of the next one an episode's first
    bonus.compute(chain_batch([[1, 1], [2, 2]], done=[[False, False], [False, True]]))
    b = bonus.compute(chain_batch([[3, 3], [3, 3]]))
    assert torch.allclose(b, torch.tensor([[1 / 0.1, 0.0], [1 / 1.1, 1 / 1.1]]), rtol=1e-5)
    # the first-step state is remembered through a checkpoint round trip (C, not a flag, says "fresh")
    clone = E3B(OBS, ACT, ridge=0.1, embedding=lambda x: x)
    clone.load_state_dict(bonus.state_dict())
    nxt = chain_batch([[3, 4]])
    assert torch.allclose(clone.compute(nxt), bonus.compute(nxt))


def test_episodic_counts_follow_inverse_sqrt_and_reset_per_env():
    bonus = EpisodicCountBonus(OBS, ACT, beta=1.0, hash_mode="exact")
    # chain_batch's obs are next_obs rolled by one step, so both envs start where they end: env 0 in
    # state 2, env 1 in state 3; the start counts as the first visit. Env 0's episode ends at step 2,
    # so step 3 starts a new episode in state 2 (obs[3] = next_obs[2]) and reaching 2 is its 2nd visit.
    b = bonus.compute(chain_batch([[2, 3], [2, 4], [2, 3], [2, 3]], done=[[False] * 2, [False] * 2, [True, False], [False] * 2]))
    r = [0.0] + [1 / math.sqrt(n) for n in range(1, 5)]
    expected = torch.tensor([[r[2], r[2]], [r[3], r[1]], [r[4], r[3]], [r[2], r[4]]])
    assert torch.allclose(b, expected, rtol=1e-6)
    # reset(mask) clears only env 1; env 0 keeps its episode (state 2 seen twice since the reset)
    bonus.reset(torch.tensor([False, True]))
    b = bonus.compute(chain_batch([[2, 3]]))
    assert torch.allclose(b[0], torch.tensor([1 / math.sqrt(3), 1 / math.sqrt(2)]), rtol=1e-6)


def test_episodic_counts_capacity_overwrites_the_oldest_state_and_round_trips():
    bonus = EpisodicCountBonus(OBS, ACT, hash_mode="exact", capacity=2)
    bonus.compute(chain_batch([[1], [2], [1]]))           # start 0 fills the ring with {start, 1}, then 2 replaces start
    state = bonus.state_dict()
    clone = EpisodicCountBonus(OBS, ACT, hash_mode="exact", capacity=2)
    clone.load_state_dict(state)
    assert torch.equal(clone.memory.keys, bonus.memory.keys) and torch.equal(clone.memory.fill, bonus.memory.fill)
    assert torch.equal(clone.compute(chain_batch([[2]])), bonus.compute(chain_batch([[2]])))


def test_e3b_learned_embedding_trains_and_round_trips():
    torch.manual_seed(0)
    bonus = E3B(OBS, ACT, embed_dim=8)
    batch = chain_batch([[1, 2], [2, 3], [3, 4], [2, 3]])
    before = [p.clone() for p in bonus.embedding.parameters()]
    metrics = bonus.update(batch)
    assert "inverse_loss" in metrics and math.isfinite(metrics["inverse_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, bonus.embedding.parameters()))
    bonus.compute(batch)
    clone = E3B(OBS, ACT, embed_dim=8)
    clone.load_state_dict(bonus.state_dict())
    nxt = chain_batch([[1, 5], [1, 5]])
    assert torch.allclose(bonus.compute(nxt), clone.compute(nxt))


def test_ngu_novel_states_score_higher_and_memory_resets():
    torch.manual_seed(0)
    bonus = NGUEpisodic(OBS, ACT, embed_dim=8, k=3, capacity=16)
    b = bonus.compute(chain_batch([[1, 1]] * 6 + [[5, 1]], done=[[False, False]] * 6 + [[False, False]]))
    assert b[0, 0] > b[5, 0]          # a state reached again and again scores less and less
    assert b[6, 0] > b[6, 1]          # a new state beats the sixth repeat of an old one
    assert torch.all(b[1:6, 0][1:] <= b[1:6, 0][:-1] + 1e-6)
    bonus.compute(chain_batch([[1, 1]], done=[[True, False]]))
    fresh = bonus.compute(chain_batch([[1, 1]]))
    assert fresh[0, 0] > fresh[0, 1]  # env 0 forgot its episode, env 1 did not


class Constant(RewardModule):
    def __init__(self, value, episodic=False, name="const"):
        super().__init__()
        self.value, self.episodic, self.name = value, episodic, name
        self.updates = 0

    def compute(self, batch):
        return torch.full_like(batch.reward, self.value)

    def update(self, batch):
        self.updates += 1
        return {"calls": self.updates}


def test_combiner_sum_and_product_compute_what_they_say():
    batch = chain_batch([[1, 2], [3, 4]])
    s = IntrinsicReward(OBS, ACT, {"a": Constant(2.0), "b": Constant(3.0)}, coefs={"a": 0.5, "b": 2.0}, normalize=False)
    assert torch.allclose(s.compute(batch), torch.full((2, 2), 0.5 * 2 + 2 * 3.0))
    p = IntrinsicReward(OBS, ACT, {"g": Constant(4.0), "e": Constant(0.5, episodic=True)}, combine="product",
                        normalize=False)
    assert torch.allclose(p.compute(batch), torch.ones(2, 2), rtol=1e-3)  # each factor / its running mean
    assert not p.episodic
    metrics = p.update(batch)
    assert metrics["g_mean"] == 4.0 and metrics["e_mean"] == 0.5 and metrics["g/calls"] == 1


def test_combiner_normalises_by_std_of_discounted_returns():
    batch = chain_batch([[1, 2], [3, 4], [1, 1]])
    s = IntrinsicReward(OBS, ACT, {"a": Constant(1.0)}, gamma=0.5)
    out = s.compute(batch)
    returns = torch.tensor([[1.0, 1.0], [1.5, 1.5], [1.75, 1.75]])  # R_t = 0.5 R_{t-1} + 1
    assert torch.allclose(out, torch.ones(3, 2) / (returns.std(unbiased=False) + 1e-8), rtol=1e-3)


class Fixed(RewardModule):
    """Returns the next of the given [T, N] tensors on each compute call."""

    def __init__(self, *values, episodic=False):
        super().__init__()
        self.values, self.episodic, self.calls = [torch.tensor(v) for v in values], episodic, 0

    def compute(self, batch):
        self.calls += 1
        return self.values[self.calls - 1]


def test_e3b_icml2023_rule_is_raw_product_over_running_step_std_clipped():
    batch = chain_batch([[1, 2], [3, 4]])
    e1, g1 = [[1.0, 2.0], [0.5, 4.0]], [[0.2, 0.1], [0.4, 1.0]]
    e2, g2 = [[1.0, 1.0], [1.0, 1.0]], [[0.1, 0.2], [0.3, 0.4]]
    m = IntrinsicReward(OBS, ACT, {"e3b": Fixed(e1, e2, episodic=True), "noveld": Fixed(g1, g2)},
                        combine="product", rule="e3b_icml2023")
    assert m.episodic and m.clip == 1.0  # the original's IMPALA return is episodic; clip_rewards=1
    p1 = torch.tensor(e1) * torch.tensor(g1)                      # raw product: [[0.2, 0.2], [0.2, 4.0]]
    out1 = m.compute(batch)
    std1 = p1.std(unbiased=False)                                  # running std of per-step values: batch 1
    assert torch.allclose(out1, (p1 / std1).clamp(-1, 1), rtol=1e-5)
    assert out1[1, 1] == 1.0 and out1[0, 0] < 1.0                  # 4 / 1.64 clipped; 0.2 / 1.64 not
    p2 = torch.tensor(e2) * torch.tensor(g2)
    out2 = m.compute(batch)
    std2 = torch.cat([p1.flatten(), p2.flatten()]).std(unbiased=False)  # all values so far, not returns
    assert torch.allclose(out2, (p2 / std2).clamp(-1, 1), rtol=1e-5)
    assert m.update(batch)["intrinsic_clipped_fraction"] == 0.0


def test_e3b_icml2023_rule_sum_unnormalised_and_clip_options():
    batch = chain_batch([[1, 2], [3, 4]])
    s = IntrinsicReward(OBS, ACT, {"a": Constant(2.0), "b": Constant(3.0)}, coefs={"b": 0.5}, normalize=False,
                        rule="e3b_icml2023", clip=None)
    assert torch.allclose(s.compute(batch), torch.full((2, 2), 2.0 + 0.5 * 3.0))
    clipped = IntrinsicReward(OBS, ACT, {"a": Constant(2.0)}, normalize=False, rule="e3b_icml2023")
    assert torch.allclose(clipped.compute(batch), torch.ones(2, 2))
    # the library's rule clips only when asked
    assert IntrinsicReward(OBS, ACT, {"a": Constant(2.0)}).clip is None
    with pytest.raises(ValueError, match="reward.rule"):
        IntrinsicReward(OBS, ACT, {"a": Constant(2.0)}, rule="icml")


def test_combiner_episodic_flag_is_honoured():
    batch = chain_batch([[1, 2], [3, 4], [1, 1]], done=[[True, True], [False, False], [False, False]])
    bonuses = lambda: {"g": Constant(1.0), "e": Constant(1.0, episodic=True)}  # noqa: E731
    assert not IntrinsicReward(OBS, ACT, bonuses(), combine="product").episodic
    assert IntrinsicReward(OBS, ACT, bonuses(), combine="product", rule="e3b_icml2023").episodic
    assert not IntrinsicReward(OBS, ACT, bonuses(), combine="product", rule="e3b_icml2023", episodic=False).episodic
    # under the return-std rule the normalising return of an episodic product stops at episode ends
    ep = IntrinsicReward(OBS, ACT, bonuses(), combine="product", gamma=0.5, episodic=True)
    glob = IntrinsicReward(OBS, ACT, bonuses(), combine="product", gamma=0.5)
    stopped, running = torch.tensor([1.0, 1.0, 1.5]), torch.tensor([1.0, 1.5, 1.75])  # R_t = 0.5 R_{t-1} + 1
    assert torch.allclose(ep.compute(batch), torch.ones(3, 2) / stopped.std(unbiased=False), rtol=1e-3)
    assert torch.allclose(glob.compute(batch), torch.ones(3, 2) / running.std(unbiased=False), rtol=1e-3)


def test_combiner_schedule_decays_linearly():
    s = IntrinsicReward(OBS, ACT, {"a": Constant(1.0)}, normalize=False, schedule="linear", decay_steps=8,
                        final_fraction=0.25)
    batch = chain_batch([[1, 2], [3, 4]])  # 4 transitions per call
    assert torch.allclose(s.compute(batch), torch.ones(2, 2))
    assert torch.allclose(s.compute(batch), torch.full((2, 2), 1 - 0.75 * 0.5))
    assert torch.allclose(s.compute(batch), torch.full((2, 2), 0.25))


def test_non_finite_bonus_is_reported_with_its_name():
    s = IntrinsicReward(OBS, ACT, {"rnd": Constant(1.0), "bad_bonus": Constant(math.inf)})
    with pytest.raises(NonFiniteRewardError, match="bad_bonus"):
        s.compute(chain_batch([[1, 2]]))


def test_unembeddable_space_names_bonus_and_space():
    with pytest.raises(ValueError, match=r"bonus 'e3b'.*Text"):
        E3B(gym.spaces.Text(5), ACT)
    with pytest.raises(ValueError, match=r"bonus 'ngu'.*MultiBinary"):
        NGUEpisodic(OBS, gym.spaces.MultiBinary(3))


def test_ppo_with_e3b_on_batched_minigrid():
    import envs.minigrid as mg
    from algorithms.ppo import PPO

    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=8, seed=0)
    module = IntrinsicReward(env.single_observation_space, env.single_action_space,
                             {"e3b": lambda **spaces: E3B(**spaces, embed_dim=16)})
    log = []
    PPO(env, n_steps=16, reward_module=module).learn(256, callback=lambda m, _: log.append(m))
    assert module.episodic and len(log) == 2
    assert log[-1]["reward/e3b_mean"] > 0 and "reward/e3b/inverse_loss" in log[-1]
    assert module.bonuses["e3b"].cov_inv.shape == (8, 16, 16)
