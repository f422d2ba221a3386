"""Short learning checks per bonus family (run with -m slow): on a long chain whose only reward is at
the far end, plain PPO almost never gets there in the budget, while PPO with a bonus learns to."""

import pytest

from algorithms.ppo import PPO
from rewards.intrinsic.combine import IntrinsicReward
from rewards.intrinsic.counts import CountBonus
from rewards.intrinsic.e3b import E3B
from rewards.intrinsic.episodic_counts import EpisodicCountBonus
from rewards.intrinsic.rnd import RND
from rlcore.evaluation import evaluate_policy
from toy_envs import ChainEnv

pytestmark = pytest.mark.slow

LENGTH, MAX_STEPS, BUDGET = 24, 48, 60_000


def _success(reward_factory, seed: int = 0, **ppo_kwargs) -> float:
    env = ChainEnv(num_envs=16, length=LENGTH, max_steps=MAX_STEPS)
    module = None
    if reward_factory is not None:
        module = IntrinsicReward(env.single_observation_space, env.single_action_space,
                                 {"bonus": reward_factory(env.single_observation_space, env.single_action_space)})
    model = PPO(env, n_steps=64, n_minibatches=4, learning_rate=1e-3, ent_coef=0.01, seed=seed,
                reward_module=module, **ppo_kwargs).learn(BUDGET)
    eval_env = ChainEnv(num_envs=32, length=LENGTH, max_steps=MAX_STEPS)
    return evaluate_policy(lambda obs: model.predict(obs)[0], eval_env)["success_rate"]


def test_plain_ppo_fails_the_long_chain():
    assert _success(None) < 0.1


@pytest.mark.parametrize("name, factory, ppo_kwargs", [
    ("counts (global)", lambda o, a: CountBonus(o, a), {}),
    ("rnd (global)", lambda o, a: RND(o, a, lr=1e-3), {}),
    # The episodic bonus needs a shorter intrinsic horizon and a smaller weight on this chain.
    ("e3b (episodic)", lambda o, a: E3B(o, a, embed_dim=16), {"gamma_int": 0.9, "int_coef": 0.1}),
    ("episodic counts", lambda o, a: EpisodicCountBonus(o, a), {"gamma_int": 0.9, "int_coef": 0.1}),
])
def test_bonus_solves_the_long_chain(name, factory, ppo_kwargs):
    assert _success(factory, **ppo_kwargs) > 0.8, name
