"""state_spec() / task_info(): every env's description matches what it returns."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

import envs.minigrid as mg
from envs.minigrid import constants as C
from rlcore.adapters.gymnasium import GymnasiumBatchedEnv
from rlcore.diagnostics import supports_visitation
from rlcore.nets import GridEncoder, make_encoder
from rlcore.spaces import space_from_dict, space_to_dict
from rlcore.spec import StateField, SymbolicGrid, TaskInfo, check_state, describe_grid_obs, grid_of

STEPS = 6


def _random_actions(env, gen: torch.Generator) -> torch.Tensor:
    space = env.single_action_space
    if isinstance(space, gym.spaces.Discrete):
        return torch.randint(0, int(space.n), (env.num_envs,), generator=gen)
    low = torch.as_tensor(space.low, dtype=torch.float32)
    high = torch.as_tensor(space.high, dtype=torch.float32)
    return low + (high - low) * torch.rand(env.num_envs, *space.shape, generator=gen)


def _drive_and_check(env) -> dict[str, StateField]:
    """Reset, step random actions with ``record_final_state``; every state dict must match the spec."""
    spec = env.state_spec()
    assert all(isinstance(f, StateField) and f.meaning for f in spec.values())
    env.record_final_state = True
    env.reset(seed=0)
    check_state(env.get_state(), spec, env.num_envs)
    gen = torch.Generator().manual_seed(0)
    for _ in range(STEPS):
        _, _, terminated, truncated, info = env.step(_random_actions(env, gen))
        check_state(env.get_state(), spec, env.num_envs)
        if spec or "final_state" in info:
            check_state(info["final_state"], spec, env.num_envs, where="info['final_state']")
    return spec


@pytest.mark.parametrize("env_id", mg.SUPPORTED_IDS)
def test_batched_minigrid_spec_matches_state(env_id):
    env = mg.make(env_id, num_envs=3, seed=0)
    env.max_steps = 3  # episodes end inside the loop, so final_state rows differ from the live state
    spec = _drive_and_check(env)
    assert spec["grid"].shape == (env.height, env.width, 3) and spec["grid"].codes == C.SYMBOLIC_GRID.codes()
    info = env.task_info()
    assert info.family == "minigrid" and info.has_success and info.success_rule
    assert info.success_kind == env.spec.success_mode
    assert info.grid == C.SYMBOLIC_GRID and info.grid_key == "grid" and info.grid_size == (env.width, env.height)
    assert grid_of(env.single_observation_space) == C.SYMBOLIC_GRID
    assert info.action_meanings == C.ACTION_MEANINGS[: env.num_actions]


def test_action_meanings_name_each_action_code():
    env = mg.make("MiniGrid-DoorKey-5x5-v0", num_envs=1, seed=0)
    meanings = env.task_info().action_meanings
    assert len(meanings) == env.single_action_space.n
    names = [m.split(":", 1)[0] for m in meanings]
    assert names == ["left", "right", "forward", "pickup", "drop", "toggle", "done"]
    assert names.index("toggle") == C.TOGGLE and all(m.split(":", 1)[1].strip() for m in meanings)
    three = mg.make("MiniGrid-Dynamic-Obstacles-5x5-v0", num_envs=1, seed=0)  # left, right, forward only
    assert three.task_info().action_meanings == C.ACTION_MEANINGS[:3]


def test_batched_minigrid_full_obs_and_codes():
    env = mg.make("MiniGrid-KeyCorridorS3R3-v0", num_envs=2, seed=0, obs_mode="full")
    _drive_and_check(env)
    grid = env.task_info().grid
    assert grid.vocab_sizes == (11, 6, 3) and grid.wall == C.WALL and C.WALL in grid.blocking
    assert grid.objects[C.GOAL] == "goal" and grid.states[C.LOCKED] == "locked"
    assert env.state_spec()["door_state"].codes["state"][-1] == "none"


def test_adapter_farama_minigrid():
    pytest.importorskip("minigrid")
    env = GymnasiumBatchedEnv("MiniGrid-DoorKey-5x5-v0", num_envs=2, max_episode_steps=3)
    spec = _drive_and_check(env)
    assert set(spec) == {"agent_pos", "agent_dir"}
    info = env.task_info()
    assert info.family == "minigrid" and info.has_success and info.grid_key is None
    assert info.grid_size == (5, 5)
    # Farama's Actions, named and explained the same way as the batched engine's
    assert info.action_meanings == C.ACTION_MEANINGS
    # the same vocabulary as the batched env, so networks and checkpoints transfer between the two
    assert info.grid == C.SYMBOLIC_GRID == grid_of(env.single_observation_space)
    env.close()


def test_adapter_rgb_minigrid_image_is_not_called_symbolic():
    wrappers = pytest.importorskip("minigrid.wrappers")
    env = GymnasiumBatchedEnv("MiniGrid-Empty-5x5-v0", num_envs=1, wrappers=[wrappers.RGBImgPartialObsWrapper])
    assert grid_of(env.single_observation_space) is None
    env.close()


def test_adapter_mujoco():
    pytest.importorskip("mujoco")
    env = GymnasiumBatchedEnv("HalfCheetah-v5", num_envs=2, max_episode_steps=3)
    spec = _drive_and_check(env)
    assert spec["qpos"].shape == (9,) and spec["qvel"].shape == (9,) and spec["qpos"].dtype == torch.float32
    info = env.task_info()
    assert info.family == "mujoco" and not info.has_success and info.grid is None
    env.close()


def test_adapter_classic_control_has_no_state_and_no_success():
    env = GymnasiumBatchedEnv("CartPole-v1", num_envs=2, max_episode_steps=3)
    assert _drive_and_check(env) == {}
    info = env.task_info()
    assert info.family == "classic_control" and not info.has_success and info.grid is None
    assert not supports_visitation(env)
    env.close()


def test_defaults_and_check_state_errors():
    from toy_envs import ChainEnv

    env = ChainEnv(num_envs=2)
    assert env.state_spec() == {} and env.task_info() == TaskInfo()
    spec = {"pos": StateField(torch.int64, (2,), "(x, y)")}
    check_state({"pos": torch.zeros(4, 2, dtype=torch.int64)}, spec, 4)
    with pytest.raises(ValueError, match="'pos'.*dtype"):
        check_state({"pos": torch.zeros(4, 2)}, spec)
    with pytest.raises(ValueError, match="'pos'.*shape"):
        check_state({"pos": torch.zeros(4, 3, dtype=torch.int64)}, spec)
    with pytest.raises(ValueError, match="N=5"):
        check_state({"pos": torch.zeros(4, 2, dtype=torch.int64)}, spec, 5)
    with pytest.raises(ValueError, match=r"missing \['pos'\].*\['other'\]"):
        check_state({"other": torch.zeros(4)}, spec)
    assert spec["pos"].describe() == "int64[N, 2]: (x, y)"


def test_grid_encoder_vocabulary_from_the_space_or_the_caller():
    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=2, seed=0)
    space = env.single_observation_space
    n_params = sum(p.numel() for p in GridEncoder(space).parameters())
    explicit = GridEncoder(space, vocab=env.task_info().grid.vocab_sizes)
    assert sum(p.numel() for p in explicit.parameters()) == n_params
    bare = gym.spaces.Dict(dict(space.spaces))  # rebuilt without the description
    with pytest.raises(ValueError, match="vocab"):
        GridEncoder(bare)
    with pytest.raises(ValueError, match="vocab"):
        make_encoder(bare, "auto")
    assert sum(p.numel() for p in make_encoder(bare, "grid", vocab=(11, 6, 3)).parameters()) == n_params
    # checkpoints keep the description: an encoder rebuilt from the saved space has the same shape
    restored = space_from_dict(space_to_dict(space))
    assert restored == space and grid_of(restored) == C.SYMBOLIC_GRID
    assert [p.shape for p in GridEncoder(restored).parameters()] == [p.shape for p in GridEncoder(space).parameters()]


def test_describe_grid_obs_needs_the_image_key():
    grid = SymbolicGrid(objects=("a", "b"), colors=("c",), states=("s",), wall=1, blocking=(1,))
    with pytest.raises(ValueError, match="image"):
        describe_grid_obs(gym.spaces.Box(0, 1, (3,)), grid)
    assert SymbolicGrid.from_dict(grid.to_dict()) == grid
