"""CQL (Kumar et al. 2020): the conservative terms by hand (discrete and continuous), Q pushed down off
the data's actions, learning on toy datasets (discrete and continuous), save/load and refused
settings (the app's runs are in test_offline_app.py)."""

from __future__ import annotations

import math

import pytest
import torch
from toy_envs import ChainEnv, PointEnv

from algorithms.cql import CQL, discrete_cql_term, importance_logsumexp
from rlcore.batch import TransitionBatch
from rlcore.checkpoint import CheckpointError
from rlcore.data import collect, concat_datasets, make_sampler, random_policy
from rlcore.evaluation import evaluate_policy


def test_discrete_conservative_term_by_hand():
    q = torch.tensor([[1.0, 2.0, 0.0], [0.5, 0.5, 3.0]])
    a = torch.tensor([1, 0])
    lse0 = math.log(math.exp(1.0) + math.exp(2.0) + math.exp(0.0))
    lse1 = math.log(2 * math.exp(0.5) + math.exp(3.0))
    assert float(discrete_cql_term(q, a)) == pytest.approx(((lse0 - 2.0) + (lse1 - 0.5)) / 2, rel=1e-6)
    # in the learner, on a fixed batch: TD (Huber) + cql_alpha (1.0 for discrete by default) * the term
    model = CQL(ChainEnv(num_envs=1, length=4), seed=0, policy_kwargs={"hidden_sizes": [16]})
    assert model.cql_alpha == 1.0
    obs, next_obs = torch.eye(4)[[0, 1, 2, 2]], torch.eye(4)[[1, 0, 3, 1]]
    batch = TransitionBatch(obs=obs, action=torch.tensor([1, 0, 1, 0]), reward=torch.tensor([0.0, 0.0, 1.0, 0.0]),
                            next_obs=next_obs, terminated=torch.tensor([False, False, True, False]),
                            truncated=torch.tensor([False, False, False, True]))
    losses = model.discrete_losses(batch)
    q_all = model.q(obs).detach()
    q_a = q_all[torch.arange(4), batch.action]
    assert float(losses["cql"].detach()) == pytest.approx(float((torch.logsumexp(q_all, 1) - q_a).mean()), rel=1e-6)
    next_max = model.q_target(next_obs).detach().max(1).values
    target = torch.tensor([0.0, 0.0, 1.0, 0.0]) + 0.99 * torch.tensor([1.0, 1.0, 0.0, 1.0]) * next_max  # truncation bootstraps
    diff = (q_a - target).abs()
    huber = torch.where(diff < 1, 0.5 * diff ** 2, diff - 0.5).mean()
    assert float(losses["td"].detach()) == pytest.approx(float(huber), rel=1e-5)
    assert float(losses["total"].detach()) == pytest.approx(float(huber) + float(losses["cql"].detach()), rel=1e-5)
    # training pushes Q down on the actions the data never takes
    data = collect(ChainEnv(num_envs=2, length=4), lambda o: torch.ones(o.shape[0], dtype=torch.long), n_episodes=4, seed=0)
    model.fit(data, 200)
    q_all = model.q(torch.eye(4)[:3]).detach()
    assert bool((q_all[:, 1] > q_all[:, 0] + 0.3).all()), q_all


def test_continuous_importance_sampled_logsumexp_by_hand():
    q_u, q_s, q_n = torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 1.0]]), torch.tensor([[0.5, -1.0]])
    lp_s, lp_n = torch.tensor([[0.3, -0.2]]), torch.tensor([[1.0, 0.0]])
    dim = 2
    terms = [1.0 - dim * math.log(0.5), 0.0 - dim * math.log(0.5), 2.0 - 0.3, 1.0 + 0.2, 0.5 - 1.0, -1.0 - 0.0]
    expected = math.log(sum(math.exp(t) for t in terms))
    assert float(importance_logsumexp(q_u, q_s, lp_s, q_n, lp_n, dim)) == pytest.approx(expected, rel=1e-6)
    temp = 0.5
    expected_t = temp * math.log(sum(math.exp(t / temp) for t in terms))
    assert float(importance_logsumexp(q_u, q_s, lp_s, q_n, lp_n, dim, temp)) == pytest.approx(expected_t, rel=1e-6)


def test_continuous_cql_pushes_q_down_on_random_actions():
    """A narrow behaviour policy (a ~ N(0.5, 0.1^2)); after 200 steps the critics rank the data's actions
    above uniform ones, which they do not without the conservative term."""
    gen = torch.Generator().manual_seed(0)
    data = collect(PointEnv(num_envs=8), lambda o: (0.5 + 0.1 * torch.randn(o.shape[0], 1, generator=gen)).clamp(-1, 1),
                   n_episodes=16, seed=0)
    obs, a_data = data.obs[:256], data.action[:256]
    uniform = torch.rand(256, 1, generator=torch.Generator().manual_seed(1)) * 2 - 1

    def gaps(cql_alpha: float) -> list[float]:
        model = CQL(PointEnv(num_envs=1), seed=0, batch_size=64, num_sampled_actions=4, cql_alpha=cql_alpha, log_every=100,
                    policy_kwargs={"hidden_sizes": [32, 32]})
        model.fit(data, 200)
        with torch.no_grad():
            return [float(q(obs, a_data).mean() - q(obs, uniform).mean()) for q in (model.q1, model.q2)]

    conservative, plain = gaps(5.0), gaps(0.0)
    assert min(conservative) > 0.2, conservative
    assert all(c > p + 0.2 for c, p in zip(conservative, plain)), (conservative, plain)


def _chain_mixture():
    """As tests/test_iql.py: ChainEnv(length 6, 10 steps), 60 episodes of a left-leaning policy (right
    with p 0.3; none reaches the end) and 2 expert episodes."""
    gen = torch.Generator().manual_seed(0)
    poor = collect(ChainEnv(num_envs=8, length=6, max_steps=10), lambda o: (torch.rand(o.shape[0], generator=gen) < 0.3).long(),
                   n_episodes=60, seed=0)
    expert = collect(ChainEnv(num_envs=2, length=6, max_steps=10), lambda o: torch.ones(o.shape[0], dtype=torch.long),
                     n_episodes=2, seed=1)
    return concat_datasets([poor, expert])


def test_discrete_cql_with_return_weighting_learns_the_good_path_from_mostly_poor_data():
    """Drawn uniformly, about 70% of the data's actions at the start go left, and going left there costs only
    1% of the value (gamma 0.99), so CQL's push towards the data's actions keeps left; with the
    trajectory-return weighting of Hong et al. (rw, alpha 0.1) the draws come from the expert episodes,
    and the conservative term pushes the never-drawn action down: the greedy policy goes right at
    every cell, with the true values gamma^k on the path."""
    data = _chain_mixture()
    assert float(data.episode_return[:60].max()) == 0.0
    model = CQL(ChainEnv(num_envs=4, length=6, max_steps=10), seed=0, batch_size=128, log_every=500,
                policy_kwargs={"hidden_sizes": [64, 64]})
    model.fit(data, 2000, sampler=make_sampler(data, "rw", alpha=0.1))
    result = evaluate_policy(lambda o: model.act(o, deterministic=True), ChainEnv(num_envs=8, length=6, max_steps=10), seed=1)
    assert result["success_rate"] == 1.0 and result["length_mean"] == 5.0
    q = model.q(torch.eye(6)[:5]).detach()
    assert bool((q[:, 1] > q[:, 0] + 1.0).all()), q
    assert torch.allclose(q[:, 1], 0.99 ** torch.arange(4, -1, -1).float(), atol=0.1), q[:, 1]


def test_continuous_cql_moves_towards_the_reward_from_random_data():
    """Uniform random actions are exactly the conservative term's uniform proposal, so it flattens Q
    in the action; with the default weight 5 the actor finds little slope within a test's budget.
    Weight 1, an actor lr of 1e-3 and small networks / 4 sampled actions keep it under a few seconds."""
    env = PointEnv(num_envs=16)
    data = collect(env, random_policy(env.single_action_space, 16, env.device, torch.Generator().manual_seed(0)),
                   n_episodes=160, seed=0)
    model = CQL(PointEnv(num_envs=2), seed=0, batch_size=128, num_sampled_actions=4, actor_lr=1e-3, cql_alpha=1.0,
                log_every=300, policy_kwargs={"hidden_sizes": [32, 32]})
    model.fit(data, 600)
    ret = evaluate_policy(lambda o: model.act(o, deterministic=True), PointEnv(num_envs=8), seed=1)["return_mean"]
    rnd = float(data.episode_return.mean())
    assert ret > rnd + 5.0, (ret, rnd)
    a = model.act(torch.tensor([[-1.0], [0.0], [0.5]]), deterministic=True)[:, 0]
    assert bool((a > 0.05).all()), a


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_cql_save_load_round_trip_and_foreign_checkpoint(tmp_path, kind):
    if kind == "discrete":
        env, obs = ChainEnv(num_envs=2), torch.eye(5)
        data = collect(env, lambda o: torch.ones(o.shape[0], dtype=torch.long), n_episodes=4, seed=0)
        expected = {"loss/critic", "loss/td", "loss/cql", "train/q"}
    else:
        env, obs = PointEnv(num_envs=2), torch.linspace(-1, 2, 7)[:, None]
        data = collect(env, random_policy(env.single_action_space, 2, env.device, torch.Generator().manual_seed(0)),
                       n_episodes=4, seed=0)
        expected = {"loss/critic", "loss/td", "loss/actor", "loss/alpha", "train/cql_gap", "train/alpha"}
    seen = []
    model = CQL(env, seed=3, log_every=10, batch_size=32, num_sampled_actions=3, policy_kwargs={"hidden_sizes": [32]})
    model.fit(data, 30, callback=lambda m, mdl: seen.append(m) or True)
    assert expected <= set(seen[0]) and [m["time/gradient_steps"] for m in seen] == [10, 20, 30]
    model.save(tmp_path / "cql.pt")
    loaded = CQL.load(tmp_path / "cql.pt")
    assert loaded.num_timesteps == 30 and set(loaded.nets) == set(model.nets)
    assert torch.equal(loaded.act(obs, deterministic=True), model.act(obs, deterministic=True))
    assert torch.equal(loaded.act(obs), model.act(obs))  # sampled (or epsilon-greedy) from the saved generator
    for name, net in model.nets.items():
        for a, b in zip(net.state_dict().values(), loaded.nets[name].state_dict().values()):
            assert torch.equal(a, b), name
    model.fit(data, 40, reset_num_timesteps=False)
    loaded.fit(data, 40, reset_num_timesteps=False)
    for name, net in model.nets.items():
        for a, b in zip(net.state_dict().values(), loaded.nets[name].state_dict().values()):
            assert torch.equal(a, b), name
    from algorithms.iql import IQL

    IQL(env, policy_kwargs={"hidden_sizes": [8]}).save(tmp_path / "iql.pt")
    with pytest.raises(CheckpointError, match="format"):
        CQL.load(tmp_path / "iql.pt")


def test_discrete_acting_is_greedy_or_epsilon_greedy():
    model = CQL(ChainEnv(num_envs=1), seed=0, eval_epsilon=1.0, policy_kwargs={"hidden_sizes": [8]})
    obs = torch.eye(5)[[0]].repeat(400, 1)
    greedy = model.act(obs, deterministic=True)
    assert bool((greedy == greedy[0]).all())
    explored = model.act(obs)  # epsilon 1: uniform over both actions
    assert 150 < int((explored == 1).sum()) < 250
    default = CQL(ChainEnv(num_envs=1), seed=0, policy_kwargs={"hidden_sizes": [8]})
    assert int((default.act(obs) != default.act(obs, deterministic=True)).sum()) <= 5  # epsilon 0.001


@pytest.mark.parametrize("kwargs, message", [
    ({"cql_alpha": -1.0}, "algo.params.cql_alpha must be >= 0"),
    ({"num_sampled_actions": 0}, "algo.params.num_sampled_actions must be a positive integer"),
    ({"actor_lr": 0}, "algo.params.actor_lr must be > 0"),
    ({"eval_epsilon": 1.5}, "algo.params.eval_epsilon must lie in"),
    ({"gamma": 1.5}, "algo.params.gamma must lie in"),
])
def test_cql_refuses_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CQL(PointEnv(num_envs=1), **kwargs)


def test_cql_defaults_follow_the_action_space():
    cont = CQL(PointEnv(num_envs=1), policy_kwargs={"hidden_sizes": [8]})
    assert cont.cql_alpha == 5.0 and cont.target_entropy == -1.0 and not cont.config.backup_entropy
    assert cont.optimizers["actor"].param_groups[0]["lr"] == 1e-4 and cont.optimizers["critic"].param_groups[0]["lr"] == 3e-4
    assert CQL(ChainEnv(num_envs=1), policy_kwargs={"hidden_sizes": [8]}).cql_alpha == 1.0
    with pytest.raises(ValueError, match="algo.params.min_q_weight is not a cql hyperparameter"):
        CQL.from_config(PointEnv(num_envs=1), {"params": {"min_q_weight": 5.0}})


def test_backup_entropy_subtracts_the_entropy_term():
    data = collect(PointEnv(num_envs=2), random_policy(PointEnv(num_envs=2).single_action_space, 2, torch.device("cpu"),
                                                         torch.Generator().manual_seed(0)), n_episodes=4, seed=0)
    targets = {}
    for flag in (False, True):
        model = CQL(PointEnv(num_envs=1), seed=0, batch_size=32, num_sampled_actions=2, backup_entropy=flag, log_every=1,
                    policy_kwargs={"hidden_sizes": [8]})
        seen = []
        model.fit(data, 1, callback=lambda m, mdl, seen=seen: seen.append(m) or True)
        targets[flag] = seen[0]["train/target"]
    # the same networks and draws: only the entropy term -alpha log pi(a'|s') in the backup differs
    assert targets[True] != pytest.approx(targets[False])
