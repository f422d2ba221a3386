"""TD3+BC (Fujimoto and Gu 2021): lambda and the actor loss by hand, the policy delay, observation
normalisation, learning on a toy dataset, save/load and refused settings (the app's run on a
continuous dataset is in test_offline_app.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from toy_envs import ChainEnv, PointEnv

from algorithms.offline_base import SpacesOnly
from algorithms.td3bc import TD3BC, normalizable
from rlcore.checkpoint import CheckpointError, load_checkpoint
from rlcore.data import collect, random_policy
from rlcore.evaluation import evaluate_policy


def _random_point_data(n_episodes: int = 160):
    env = PointEnv(num_envs=16)
    gen = torch.Generator().manual_seed(0)
    return collect(env, random_policy(env.single_action_space, 16, env.device, gen), n_episodes=n_episodes, seed=0)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_lambda_and_actor_loss_by_hand():
    model = TD3BC(PointEnv(num_envs=1), seed=0, policy_kwargs={"hidden_sizes": [16]})
    obs = torch.tensor([[-0.5], [0.0], [0.3], [1.2]])
    action = torch.tensor([[0.5], [-1.0], [0.2], [0.0]])
    loss, lam, q = model.actor_loss(obs, action)
    # by hand, through the networks' layers
    pi = torch.tanh(model.actor.body.head(obs))
    q_hand = model.q1.body.head(torch.cat([obs, pi], -1)).squeeze(-1)
    lam_hand = 2.5 / q_hand.abs().mean()
    assert torch.allclose(q, q_hand) and float(lam) == pytest.approx(float(lam_hand.detach()), rel=1e-6)
    expected = -lam_hand * q_hand.mean() + ((pi - action) ** 2).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    # lambda is a constant for the gradient: the actor's gradient is that of -c Q + MSE with c fixed
    grads = torch.autograd.grad(loss, list(model.actor.parameters()))
    const = float(lam_hand.detach())
    fixed = -const * q_hand.mean() + ((pi - action) ** 2).mean()
    assert all(torch.allclose(g, h, atol=1e-6) for g, h in zip(grads, torch.autograd.grad(fixed, list(model.actor.parameters()),
                                                                                        retain_graph=True)))
    pi2 = torch.tanh(model.actor.body.head(obs))
    q2 = model.q1.body.head(torch.cat([obs, pi2], -1)).squeeze(-1)
    through = -(2.5 / q2.abs().mean()) * q2.mean() + ((pi2 - action) ** 2).mean()  # lambda not detached
    other = torch.autograd.grad(through, list(model.actor.parameters()))
    assert not all(torch.allclose(g, h, atol=1e-6) for g, h in zip(grads, other))
    # the critic gets no gradient from the actor's loss
    loss2, _, _ = model.actor_loss(obs, action)
    loss2.backward()
    assert all(p.grad is None for p in model.q1.parameters())


def test_policy_delay_smoothing_and_bootstrap_mask():
    data = _random_point_data(8)
    model = TD3BC(PointEnv(num_envs=1), seed=0, batch_size=32, log_every=1, policy_kwargs={"hidden_sizes": [16]})
    actor, actor_t, q1, q1_t = (_params(m) for m in (model.actor, model.actor_target, model.q1, model.q1_target))
    model.fit(data, 1)
    assert _same(actor, _params(model.actor)) and _same(actor_t, _params(model.actor_target))
    assert _same(q1_t, _params(model.q1_target)) and not _same(q1, _params(model.q1))
    model.fit(data, 2, reset_num_timesteps=False)  # the 2nd step updates the actor and the targets
    assert not _same(actor, _params(model.actor)) and not _same(actor_t, _params(model.actor_target))
    assert not _same(q1_t, _params(model.q1_target))
    # the logged actor loss is the mean over the steps that updated the actor
    seen = []
    model.fit(data, 10, reset_num_timesteps=False, callback=lambda m, mdl: seen.append(m) or True)
    assert [("loss/actor" in m) for m in seen] == [False, True] * 4
    # the target masks terminated transitions only (PointEnv's episodes end by truncation, so they bootstrap)
    from rlcore.batch import TransitionBatch

    batch = data.transitions(torch.arange(4))
    batch.action = batch.action.clamp(-1, 1)
    ended = TransitionBatch(obs=batch.obs, action=batch.action, reward=torch.full((4,), 2.0), next_obs=batch.next_obs,
                            terminated=torch.ones(4, dtype=torch.bool), truncated=torch.zeros(4, dtype=torch.bool))
    for opt in model.optimizers.values():
        for g in opt.param_groups:
            g["lr"] = 0.0
    assert float(model.update(ended)["train/target"]) == pytest.approx(2.0)
    cut = TransitionBatch(obs=batch.obs, action=batch.action, reward=torch.full((4,), 2.0), next_obs=batch.next_obs,
                          terminated=torch.zeros(4, dtype=torch.bool), truncated=torch.ones(4, dtype=torch.bool))
    with torch.no_grad():
        nxt = model.obs_norm(batch.next_obs)
        pi_t = model.actor_target(nxt)
        by_hand = 2.0 + 0.99 * torch.minimum(model.q1_target(nxt, pi_t), model.q2_target(nxt, pi_t))
    model.config.policy_noise = 0.0  # without smoothing noise the target is r + gamma min Q'(s', pi'(s'))
    assert float(model.update(cut)["train/target"]) == pytest.approx(float(by_hand.mean()), rel=1e-5)
    model.config.policy_noise = 0.2  # with it the target moves
    assert float(model.update(cut)["train/target"]) != pytest.approx(float(by_hand.mean()), rel=1e-5)


def test_observation_normalisation_is_fitted_saved_and_applied(tmp_path):
    data = _random_point_data(16)
    model = TD3BC(PointEnv(num_envs=1), seed=0, batch_size=32, log_every=5, policy_kwargs={"hidden_sizes": [16]})
    model.fit(data, 5)
    mean, std = data.obs.double().mean(0), data.obs.double().std(0, unbiased=False) + 1e-3
    assert torch.allclose(model.obs_norm.mean.double(), mean, atol=1e-6)
    assert torch.allclose(model.obs_norm.std.double(), std, atol=1e-6)
    assert float(model.obs_norm.std[0]) != pytest.approx(1.0, abs=0.05)  # not the identity: the test can fail
    x = torch.tensor([[-1.0], [0.0], [0.7]])
    by_hand = model.actor((x - model.obs_norm.mean) / model.obs_norm.std)  # PointEnv's action bounds are [-1, 1]
    assert torch.allclose(model.act(x, deterministic=True), by_hand.detach())
    assert not torch.allclose(model.act(x, deterministic=True), model.actor(x).detach())
    model.save(tmp_path / "m.pt")
    payload = load_checkpoint(tmp_path / "m.pt", TD3BC.checkpoint_format)
    assert torch.equal(payload["nets"]["obs_norm"]["mean"], model.obs_norm.mean)
    loaded = TD3BC.load(tmp_path / "m.pt")
    assert torch.equal(loaded.obs_norm.std, model.obs_norm.std)
    assert torch.equal(loaded.act(x, deterministic=True), model.act(x, deterministic=True))
    # flat float Box observations only; off on request
    assert normalizable(gym.spaces.Box(-1, 1, (3,), np.float32))
    assert not normalizable(gym.spaces.Box(0, 255, (3,), np.uint8))
    assert not normalizable(gym.spaces.Box(-1, 1, (2, 2), np.float32))
    assert not normalizable(gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (3,), np.float32)}))
    image = SpacesOnly(gym.spaces.Box(0, 255, (4,), np.uint8), gym.spaces.Box(-1, 1, (1,), np.float32), torch.device("cpu"))
    assert not TD3BC(image, policy_kwargs={"hidden_sizes": [8]}).obs_norm.enabled
    off = TD3BC(PointEnv(num_envs=1), normalize_observations=False, batch_size=32, log_every=5,
                policy_kwargs={"hidden_sizes": [8]})
    off.fit(data, 5)
    assert torch.allclose(off.act(x, deterministic=True), off.actor(x).detach())


def test_td3bc_moves_towards_the_reward_from_random_data():
    """Paper defaults (batch 256, alpha 2.5, policy delay 2) with 64x64 networks, 1000 steps."""
    data = _random_point_data()
    model = TD3BC(PointEnv(num_envs=2), seed=0, log_every=500, policy_kwargs={"hidden_sizes": [64, 64]})
    model.fit(data, 1000)
    ret = evaluate_policy(lambda o: model.act(o, deterministic=True), PointEnv(num_envs=8), seed=1)["return_mean"]
    rnd = float(data.episode_return.mean())
    assert ret > rnd + 5.0, (ret, rnd)
    a = model.act(torch.tensor([[-1.0], [0.0], [0.5], [1.5]]), deterministic=True)[:, 0]
    assert bool((a[:3] > 0.05).all()) and float(a[3]) < float(a[2]), a
    # an episode from x = 0 ends near the goal x = 1
    env = PointEnv(num_envs=1)
    obs, _ = env.reset()
    for _ in range(20):
        obs, _, _, truncated, info = env.step(model.act(obs, deterministic=True))
    assert bool(truncated[0]) and abs(float(info["final_obs"][0, 0]) - 1.0) < 0.5, info["final_obs"]


def test_td3bc_save_load_round_trip_and_foreign_checkpoint(tmp_path):
    data = _random_point_data(8)
    seen = []
    model = TD3BC(PointEnv(num_envs=2), seed=3, log_every=10, batch_size=32, policy_kwargs={"hidden_sizes": [32]})
    model.fit(data, 30, callback=lambda m, mdl: seen.append(m) or True)
    assert {"loss/critic", "loss/actor", "train/lambda", "train/q"} <= set(seen[0])
    assert [m["time/gradient_steps"] for m in seen] == [10, 20, 30]
    model.save(tmp_path / "td3bc.pt")
    loaded = TD3BC.load(tmp_path / "td3bc.pt")
    obs = torch.linspace(-1, 2, 7)[:, None]
    assert torch.equal(loaded.act(obs, deterministic=True), model.act(obs, deterministic=True))
    assert torch.equal(loaded.act(obs), model.act(obs))
    assert loaded.num_timesteps == 30
    for name, net in model.nets.items():
        for a, b in zip(net.state_dict().values(), loaded.nets[name].state_dict().values()):
            assert torch.equal(a, b), name
    # training on continues identically (the smoothing noise and the minibatches come from the saved generator)
    model.fit(data, 41, reset_num_timesteps=False)
    loaded.fit(data, 41, reset_num_timesteps=False)
    for name, net in model.nets.items():
        for a, b in zip(net.state_dict().values(), loaded.nets[name].state_dict().values()):
            assert torch.equal(a, b), name
    from algorithms.iql import IQL

    IQL(PointEnv(num_envs=1), policy_kwargs={"hidden_sizes": [8]}).save(tmp_path / "iql.pt")
    with pytest.raises(CheckpointError, match="format"):
        TD3BC.load(tmp_path / "iql.pt")


def test_td3bc_refuses_discrete_actions():
    with pytest.raises(ValueError, match=r"algo=td3bc needs a continuous \(Box\) action space"):
        TD3BC(ChainEnv(num_envs=1))


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 0}, "algo.params.alpha must be > 0"),
    ({"policy_delay": 0}, "algo.params.policy_delay must be a positive integer"),
    ({"policy_noise": -0.1}, "algo.params.policy_noise must be >= 0"),
    ({"tau": 0}, "algo.params.tau must lie in"),
    ({"batch_size": 0}, "algo.params.batch_size must be a positive integer"),
])
def test_td3bc_refuses_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TD3BC(PointEnv(num_envs=1), **kwargs)


def test_td3bc_from_config_names_an_unknown_key():
    with pytest.raises(ValueError, match="algo.params.alhpa is not a td3bc hyperparameter"):
        TD3BC.from_config(PointEnv(num_envs=1), {"params": {"alhpa": 2.5}})
