"""IQL (Kostrikov et al. 2022): the expectile loss, learning on toy datasets (discrete and
continuous), save/load and the training app (resume after a kill is in test_offline_app.py)."""

from __future__ import annotations

import pytest
import torch
from toy_envs import ChainEnv, PointEnv

from algorithms.iql import IQL, expectile_loss
from rlcore.checkpoint import CheckpointError
from rlcore.data import TrajectoryDataset, collect, random_policy
from rlcore.evaluation import evaluate_policy


def test_expectile_loss_is_the_asymmetric_square():
    diff = torch.tensor([2.0, -2.0])
    assert float(expectile_loss(diff, 0.7)) == pytest.approx((0.7 * 4 + 0.3 * 4) / 2)
    assert float(expectile_loss(torch.tensor([1.0]), 0.9)) == pytest.approx(0.9)
    assert float(expectile_loss(torch.tensor([-1.0]), 0.9)) == pytest.approx(0.1)
    # the minimiser of the expectile loss over a constant is the tau-expectile: above the mean for tau > 0.5
    x = torch.tensor([0.0, 0.0, 0.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.2)
    for _ in range(400):
        opt.zero_grad()
        expectile_loss(x - v, 0.9).backward()
        opt.step()
    # tau-expectile m solves 0.9 * (10 - m) = 0.1 * 3 m  ->  m = 9 / 1.2 = 7.5
    assert float(v.detach()) == pytest.approx(7.5, abs=0.05)


def _chain_mixture() -> TrajectoryDataset:
    """ChainEnv(length 6, 10 steps): 60 episodes of a left-leaning policy (right with p 0.3; none reaches
    the end) and 2 expert episodes."""
    gen = torch.Generator().manual_seed(0)
    poor = collect(ChainEnv(num_envs=8, length=6, max_steps=10), lambda o: (torch.rand(o.shape[0], generator=gen) < 0.3).long(),
                   n_episodes=60, seed=0)
    expert = collect(ChainEnv(num_envs=2, length=6, max_steps=10), lambda o: torch.ones(o.shape[0], dtype=torch.long),
                     n_episodes=2, seed=1)
    from rlcore.data import concat_datasets

    return concat_datasets([poor, expert])


def test_discrete_iql_learns_the_good_path_from_mostly_poor_data():
    """With the paper's return scaling the advantage of "right" is large enough for the advantage
    weights to pick it, though 95% of the data's actions at the start go left or wander."""
    data = _chain_mixture()
    assert float(data.episode_return[:60].max()) == 0.0
    env = ChainEnv(num_envs=4, length=6, max_steps=10)
    model = IQL(env, seed=0, batch_size=128, log_every=250, normalize_returns=True, policy_kwargs={"hidden_sizes": [64, 64]})
    model.fit(data, 2000)
    result = evaluate_policy(lambda o: model.act(o, deterministic=True), ChainEnv(num_envs=8, length=6, max_steps=10), seed=1)
    assert result["success_rate"] == 1.0 and result["length_mean"] == 5.0


def test_continuous_iql_moves_towards_the_reward_from_random_data():
    env = PointEnv(num_envs=16)
    gen = torch.Generator().manual_seed(0)
    data = collect(env, random_policy(env.single_action_space, 16, env.device, gen), n_episodes=160, seed=0)
    model = IQL(PointEnv(num_envs=2), seed=0, batch_size=256, log_every=500, policy_kwargs={"hidden_sizes": [64, 64]})
    model.fit(data, 1500)
    iql = evaluate_policy(lambda o: model.act(o, deterministic=True), PointEnv(num_envs=8), seed=1)["return_mean"]
    rnd = float(data.episode_return.mean())
    assert iql > rnd + 5.0, (iql, rnd)
    x = torch.tensor([[-1.0], [0.0], [0.5], [2.0]])
    a = model.act(x, deterministic=True)[:, 0]
    assert bool((a[:3] > 0).all()) and float(a[3]) < 0, a


def test_iql_save_load_round_trip_and_metrics(tmp_path):
    env = ChainEnv(num_envs=2)
    data = collect(env, lambda o: torch.ones(o.shape[0], dtype=torch.long), n_episodes=4, seed=0)
    seen = []
    model = IQL(env, seed=3, log_every=10, batch_size=32, policy_kwargs={"hidden_sizes": [32]})
    model.fit(data, 30, callback=lambda m, mdl: seen.append(m) or True)
    assert {"loss/value", "loss/actor", "loss/critic", "train/q", "train/advantage"} <= set(seen[0])
    assert [m["time/gradient_steps"] for m in seen] == [10, 20, 30]
    model.save(tmp_path / "iql.pt")
    loaded = IQL.load(tmp_path / "iql.pt")
    obs = torch.eye(5)
    assert torch.equal(loaded.act(obs, deterministic=True), model.act(obs, deterministic=True))
    assert loaded.num_timesteps == 30
    for name, net in model.nets.items():
        for a, b in zip(net.state_dict().values(), loaded.nets[name].state_dict().values()):
            assert torch.equal(a, b), name
    # training on continues identically from the loaded state
    model.fit(data, 40, reset_num_timesteps=False)
    loaded.fit(data, 40, reset_num_timesteps=False)
    assert torch.equal(next(model.actor.parameters()), next(loaded.actor.parameters()))
    from algorithms.bc import BC

    BC(env).save(tmp_path / "bc.pt")
    with pytest.raises(CheckpointError, match="format"):
        IQL.load(tmp_path / "bc.pt")


@pytest.mark.parametrize("kwargs, message", [
    ({"expectile": 1.0}, "algo.params.expectile must lie in"),
    ({"beta": 0}, "algo.params.beta must be > 0"),
    ({"batch_size": 0}, "algo.params.batch_size must be a positive integer"),
])
def test_iql_refuses_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IQL(ChainEnv(num_envs=1), **kwargs)
