"""Feature sources of the embedding-based bonuses: the CNN without pooling, privileged state, errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import envs.minigrid as mg
from rewards.intrinsic.combine import IntrinsicReward
from rewards.intrinsic.e3b import E3B
from rewards.intrinsic.features import STATE_FEATURE_KEYS, GridStateEncoder, bonus_encoder, state_as_obs
from rewards.intrinsic.icm import ICM
from rewards.intrinsic.ngu import NGUEpisodic
from rewards.intrinsic.re3 import RE3
from rewards.intrinsic.rnd import RND
from rlcore.batch import TransitionBatch
from rlcore.nets import GridEncoder, make_encoder

BOX = gym.spaces.Box(0.0, 1.0, (6,), np.float32)
ACT = gym.spaces.Discrete(3)
BONUSES = {"e3b": E3B, "ngu": NGUEpisodic, "rnd": RND, "re3": RE3, "icm": ICM}
STATE_BY_DEFAULT = {"e3b", "icm", "re3"}


@pytest.fixture(scope="module")
def minigrid():
    """Empty-8x8 with 4 envs and a [T=3, N=4] batch of random steps, with privileged state."""
    env = mg.make("MiniGrid-Empty-8x8-v0", num_envs=4, seed=0)
    env.record_final_state = True
    obs, _ = env.reset(seed=0)
    g = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(3):
        state = {k: v.clone() for k, v in env.get_state().items()}
        a = torch.randint(0, 3, (4,), generator=g)
        nxt, r, te, tr, info = env.step(a)
        rows.append((obs, a, r, info["final_obs"], te, tr, state, {k: v.clone() for k, v in info["final_state"].items()}))
        obs = nxt

    def stack(xs):
        return {k: torch.stack([x[k] for x in xs]) for k in xs[0]} if isinstance(xs[0], dict) else torch.stack(xs)

    c = list(zip(*rows))
    batch = TransitionBatch(obs=stack(c[0]), action=stack(c[1]), reward=stack(c[2]).float(), next_obs=stack(c[3]),
                            terminated=stack(c[4]), truncated=stack(c[5]), state=stack(c[6]), next_state=stack(c[7]))
    return env, batch


def test_policy_encoder_keeps_its_pool_and_bonus_encoder_drops_it(minigrid):
    env, batch = minigrid
    space = env.single_observation_space
    pooled = make_encoder(space, "grid")
    assert any(isinstance(m, nn.MaxPool2d) for m in pooled.modules()) and pooled.pool
    assert [p.shape for p in pooled.parameters()] == [p.shape for p in GridEncoder(space).parameters()]
    nopool = bonus_encoder(space, "test")
    assert isinstance(nopool, GridEncoder) and not nopool.pool and nopool.out_dim == 512
    assert not any(isinstance(m, nn.MaxPool2d) for m in nopool.modules())
    assert nopool.proj[0].in_features == 64 * 4 * 4 + 4     # the 4x4 map of the 7x7 view, plus the heading
    obs = {k: v[0] for k, v in batch.next_obs.items()}
    assert nopool(obs).shape == (4, 512) and pooled(obs).shape == (4, 64)


def test_state_encoder_reads_cell_and_grid_not_heading(minigrid):
    env, batch = minigrid
    torch.manual_seed(0)
    enc = GridStateEncoder(env.task_info().grid.vocab_sizes, out_dim=16)
    state = {k: v[0] for k, v in batch.next_state.items()}
    out = enc(state)
    assert out.shape == (4, 16) and torch.isfinite(out).all()
    turned = {**state, "agent_dir": (state["agent_dir"] + 1) % 4}
    assert torch.equal(enc(turned), out)                     # the heading is not an input
    moved = {**state, "agent_pos": state["agent_pos"].flip(-1) % 6 + 1}
    assert not torch.allclose(enc(moved), out)
    opened = {**state, "grid": state["grid"].clone()}
    opened["grid"][:, 3, 3] = torch.tensor([5, 4, 0], dtype=torch.uint8)   # a key appears
    assert not torch.allclose(enc(opened), out)
    big = {**state, "grid": torch.ones(4, 26, 26, 3, dtype=torch.uint8)}
    with pytest.raises(ValueError, match="25x25"):
        enc(big)


@pytest.mark.parametrize("name", list(BONUSES))
def test_default_feature_source_and_the_state_it_asks_for(name, minigrid):
    env, batch = minigrid
    space = env.single_observation_space
    torch.manual_seed(0)
    bonus = BONUSES[name](space, ACT)
    if name in STATE_BY_DEFAULT:
        assert bonus.features == "state" and bonus.needs_state and bonus.state_keys == list(STATE_FEATURE_KEYS)
    else:
        assert bonus.features == "obs" and not bonus.needs_state and bonus.state_keys is None
    assert BONUSES[name](BOX, ACT).features == "obs"          # not a symbolic grid: the observation
    forced = BONUSES[name](space, ACT, features="state")
    out = forced.compute(batch)
    assert out.shape == batch.batch_shape and torch.isfinite(out).all()
    forced.update(batch)
    with pytest.raises(ValueError, match=rf"bonus '{name}'.*privileged state.*the batch has no state"):
        forced.compute(TransitionBatch(**{**vars(batch), "state": None, "next_state": None}))
    with pytest.raises(ValueError, match=rf"bonus '{name}'.*features='state'.*symbolic-grid"):
        BONUSES[name](BOX, ACT, features="state")
    with pytest.raises(ValueError, match=rf"bonus '{name}'.*features must be one of"):
        BONUSES[name](space, ACT, features="pixels")


def test_state_batch_names_missing_keys(minigrid):
    _, batch = minigrid
    partial = {k: v for k, v in batch.next_state.items() if k != "carrying"}
    with pytest.raises(ValueError, match=r"bonus 'x'.*next_state has no \['carrying'\]"):
        state_as_obs(TransitionBatch(**{**vars(batch), "next_state": partial}), "bonus 'x'")
    swapped = state_as_obs(batch, "bonus 'x'")
    assert set(swapped.next_obs) == set(STATE_FEATURE_KEYS) and swapped.next_state is batch.next_state
    assert torch.equal(swapped.action, batch.action)


def test_combiner_asks_the_learner_for_the_feature_state(minigrid):
    env, batch = minigrid
    space = env.single_observation_space
    module = IntrinsicReward(space, ACT, bonuses={"e3b": E3B(space, ACT, embed_dim=8), "rnd": RND(space, ACT)})
    assert module.needs_state and module.state_keys == sorted(STATE_FEATURE_KEYS)
    assert module.compute(batch).shape == batch.batch_shape


def test_state_features_round_trip(minigrid):
    env, batch = minigrid
    space = env.single_observation_space
    torch.manual_seed(0)
    bonus = RND(space, ACT, features="state", update_proportion=1.0)
    bonus.compute(batch)
    bonus.update(batch)
    torch.manual_seed(1)
    clone = RND(space, ACT, features="state", update_proportion=1.0)
    clone.load_state_dict(bonus.state_dict())
    assert torch.equal(bonus.compute(batch), clone.compute(batch))


def test_state_encoder_refuses_another_encoder():
    env = mg.make("MiniGrid-Empty-5x5-v0", num_envs=1, seed=0)
    with pytest.raises(ValueError, match=r"bonus 'rnd'.*encoder='mlp' applies to features='obs'"):
        RND(env.single_observation_space, ACT, features="state", encoder="mlp")


def test_grid_view_encoder_reads_the_image_without_the_heading():
    env = mg.make("MiniGrid-Empty-8x8-v0", num_envs=4, seed=0)
    obs, _ = env.reset(seed=0)
    same_view = {"image": obs["image"][:1].expand(4, -1, -1, -1), "direction": torch.arange(4),
                 "mission": obs["mission"]}
    torch.manual_seed(0)
    view = make_encoder(env.single_observation_space, "grid_view", out_dim=32)
    torch.manual_seed(0)
    nopool = make_encoder(env.single_observation_space, "grid_nopool", out_dim=32)
    assert not view.use_direction and nopool.use_direction and not view.pool
    with torch.no_grad():
        f_view, f_nopool = view(same_view), nopool(same_view)
    assert torch.equal(f_view, f_view[:1].expand_as(f_view))          # the heading does not reach the features
    assert not torch.equal(f_nopool, f_nopool[:1].expand_as(f_nopool))
    bonus = E3B(env.single_observation_space, env.single_action_space, features="obs", encoder="grid_view")
    assert not bonus.embedding.phi[0].use_direction
