"""Fixed ("singleton") layouts of the batched MiniGrid, and ``env.options`` from a config."""

from __future__ import annotations

import pytest
import torch

import envs.minigrid as mg
from rlcore.config import compose_config
from rlcore.env import EnvOptionError
from rlcore.make_env import make_env

TASK = "MiniGrid-KeyCorridorS3R3-v0"


def _layout(env: mg.BatchedMiniGrid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = env.state
    return s["grid"].clone(), s["agent_pos"].clone(), s["agent_dir"].clone()


def _same_rows(t: torch.Tensor) -> bool:
    return bool((t == t[:1]).all())


def test_procedural_layouts_differ_between_envs():
    env = mg.make(TASK, num_envs=16, seed=0)
    env.reset(seed=0)
    grid, _, _ = _layout(env)
    assert not _same_rows(grid)


def test_fixed_layout_is_the_same_in_every_env_every_episode_and_every_seed():
    env = mg.make(TASK, num_envs=8, seed=0, layout="fixed", layout_seed=5)
    env.reset(seed=0)
    grid0, pos0, dir0 = _layout(env)
    assert _same_rows(grid0) and _same_rows(pos0) and _same_rows(dir0)
    # another env instance with another seed (the eval env) starts from the same layout
    other = mg.make(TASK, num_envs=3, seed=123, layout="fixed", layout_seed=5)
    other.reset(seed=99)
    assert torch.equal(other.state["grid"][0], grid0[0]) and torch.equal(other.state["agent_pos"][0], pos0[0])
    # every episode: step until each env has ended at least one episode, then the reset rows match
    gen = torch.Generator().manual_seed(0)
    ended = torch.zeros(8, dtype=torch.bool)
    for _ in range(env.max_steps + 2):
        _, _, term, trunc, _ = env.step(torch.randint(0, env.num_actions, (8,), generator=gen))
        done = term | trunc
        if done.any():
            assert torch.equal(env.state["grid"][done], grid0[done])
            assert torch.equal(env.state["agent_pos"][done], pos0[done])
            assert torch.equal(env.state["agent_dir"][done], dir0[done])
            assert (env.state["step_count"][done] == 0).all()
        ended |= done
    assert ended.all()


def test_layout_seed_picks_the_layout():
    a = mg.make(TASK, num_envs=1, layout="fixed", layout_seed=0)
    b = mg.make(TASK, num_envs=1, layout="fixed", layout_seed=1)
    same = [torch.equal(mg.make(TASK, num_envs=1, layout="fixed", layout_seed=s).state["grid"], a.state["grid"])
            for s in range(1, 6)]
    assert torch.equal(mg.make(TASK, num_envs=1, layout="fixed", layout_seed=0).state["grid"], a.state["grid"])
    assert not all(same), "five layout seeds all gave layout 0"
    assert b.layout_seed == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"layout": "singleton"}, "layout must be one of"),
    ({"layout": "fixed", "layout_seed": -1}, "layout_seed must be a non-negative integer"),
])
def test_bad_layout_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mg.make(TASK, num_envs=2, **kwargs)


def test_env_options_reach_the_batched_env():
    cfg = compose_config("train", [f"env.id={TASK}", "env.options={layout: fixed, layout_seed: 3}"])
    env = make_env(cfg.env, "cpu", seed=0, num_envs=4)
    assert (env.layout, env.layout_seed) == ("fixed", 3)
    assert _same_rows(env.state["grid"])
    plain = make_env(compose_config("train", [f"env.id={TASK}"]).env, "cpu", seed=0, num_envs=4)
    assert plain.layout == "procedural"


@pytest.mark.parametrize("options, message", [
    ("{layuot: fixed}", r"env\.options\.layuot is not an option of this env backend; options: .*layout"),
    ("{layout: fxed}", r"env\.options\.layout must be one of"),
    ("{layout: fixed, layout_seed: -2}", r"env\.options\.layout_seed must be a non-negative integer, got -2"),
    ("{obs_mode: egocentric}", r"env\.options\.obs_mode must be one of"),
    ("3", r"env\.options must be a mapping"),
])
def test_bad_env_options_name_the_key(options, message):
    cfg = compose_config("train", [f"env.id={TASK}", f"env.options={options}"])
    with pytest.raises(ValueError, match=message):
        make_env(cfg.env, "cpu", seed=0, num_envs=2)


def test_bad_options_raise_the_contract_error_naming_the_option():
    with pytest.raises(EnvOptionError) as info:
        mg.make(TASK, num_envs=2, layout="fixed", layout_seed=1.5)
    assert info.value.option == "layout_seed"
    assert str(info.value).startswith("layout_seed ")


def test_env_options_are_refused_for_the_gymnasium_adapter():
    cfg = compose_config("train", ["env.id=CartPole-v1", "env.options={layout: fixed}"])
    with pytest.raises(ValueError, match=r"env\.options \(layout\) are options of the batched backend"):
        make_env(cfg.env, "cpu", seed=0, num_envs=2)
