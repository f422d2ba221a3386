"""Environment context for reward writers (rewards.llm.context) and prompt rendering (rewards.llm.search.prompting)."""

import importlib.util

import gymnasium as gym
import pytest
import torch

import envs.minigrid as mg
from envs.minigrid import constants as C
from rewards.llm.context import REWARD_SIGNATURE, StateSpec, describe_env
from rewards.llm.search.prompting import (
    TemplateError,
    format_ranking,
    format_reflection,
    initial_messages,
    preference_messages,
    reflection_messages,
    render_template,
)
from rlcore.env import BatchedEnv

HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
DOORKEY = "MiniGrid-DoorKey-8x8-v0"


@pytest.fixture(scope="module")
def doorkey_ctx():
    return describe_env(mg.make(DOORKEY, num_envs=2, seed=0), DOORKEY)


def test_doorkey_lists_state_actions_and_signature(doorkey_ctx):
    ctx = doorkey_ctx
    assert ctx.family == "minigrid"
    assert ctx.spec("agent_pos") == StateSpec("agent_pos", "int64", ("N", 2), ctx.spec("agent_pos").meaning)
    assert "agent_pos: int64[N, 2]  # (x, y) grid cell of the agent" in ctx.text
    assert "grid: uint8[N, 8, 8, 3]" in ctx.text
    assert "door_state: int64[N]  #" in ctx.text and "goal_pos: int64[N, 2]  #" in ctx.text
    for i, name in enumerate(["left", "right", "forward", "pickup", "drop", "toggle", "done"]):
        assert f"{i} = {name}:" in ctx.action_desc
    assert REWARD_SIGNATURE in ctx.text and ctx.signature == REWARD_SIGNATURE
    assert "use the key to open the door and then get to the goal" in ctx.text
    assert "goal cell" in ctx.success_desc and ctx.max_episode_steps == 640
    assert ctx.facts["has_goal"] and ctx.facts["has_door"] and ctx.facts["has_key"] and not ctx.facts["has_lava"]
    assert ctx.facts["grid_size"] == [8, 8]


def test_minigrid_encodings_match_the_engine(doorkey_ctx):
    ids = doorkey_ctx.facts["object_ids"]
    assert {name: ids[name] for name in C.OBJECT_NAMES} == {name: i for i, name in enumerate(C.OBJECT_NAMES)}
    colours = doorkey_ctx.facts["colour_ids"]
    assert {name: colours[name] for name in C.COLOR_NAMES} == {name: i for i, name in enumerate(C.COLOR_NAMES)}
    assert doorkey_ctx.facts["door_state_ids"] == {"open": C.OPEN, "closed": C.CLOSED, "locked": C.LOCKED}
    assert f"key={C.KEY}" in doorkey_ctx.encodings and f"locked={C.LOCKED}" in doorkey_ctx.encodings


@pytest.mark.parametrize("env_id", mg.SUPPORTED_IDS)
def test_every_supported_minigrid_id_renders(env_id):
    env = mg.make(env_id, num_envs=2, seed=0)
    ctx = describe_env(env, env_id)
    state = env.get_state()
    assert [s.name for s in ctx.state_specs] == list(state)
    for s in ctx.state_specs:
        assert s.shape == ("N", *state[s.name].shape[1:]) and s.dtype == str(state[s.name].dtype)[6:]
        assert s.meaning, f"{env_id}: no meaning for {s.name}"
        assert s.line() in ctx.text
    assert ctx.max_episode_steps == env.max_steps
    assert ctx.facts["success_mode"] == env.spec.success_mode
    names = ["left", "right", "forward", "pickup", "drop", "toggle", "done"][: env.num_actions]
    assert all(f"= {n}:" in ctx.action_desc for n in names)
    assert ("= pickup:" in ctx.action_desc) == (env.num_actions > 3)


def test_mission_table_for_multi_mission_tasks():
    env = mg.make("MiniGrid-KeyCorridorS3R1-v0", num_envs=2, seed=0)
    ctx = describe_env(env, "MiniGrid-KeyCorridorS3R1-v0")
    assert "state['mission'] indexes them" in ctx.success_desc
    for i, m in enumerate(env.missions):
        assert f'{i}="{m}"' in ctx.success_desc
    assert "target" in ctx.success_desc


class _ExtraKeyEnv(BatchedEnv):
    """A toy env with one unknown state key and a Box action space."""

    num_envs, device, env_id = 3, torch.device("cpu"), "Toy-v0"
    single_observation_space = gym.spaces.Box(-1, 1, (2,))
    single_action_space = gym.spaces.Box(-2.0, 2.0, (4,))

    def reset(self, seed=None, options=None):
        return torch.zeros(3, 2), {}

    def step(self, actions):  # pragma: no cover - not stepped here
        raise NotImplementedError

    def get_state(self):
        return {"foo": torch.zeros(3, 5, dtype=torch.float16)}


def test_unknown_keys_are_listed_with_shape_and_dtype():
    ctx = describe_env(_ExtraKeyEnv(), "Toy-v0")
    assert ctx.family == "other"
    assert ctx.state_specs == [StateSpec("foo", "float16", ("N", 5), "")]
    assert "foo: float16[N, 5]" in ctx.text
    assert "action: float32[N, 4], each entry in [-2, 2]" in ctx.action_desc


@pytest.mark.skipif(not HAS_MUJOCO, reason="mujoco is not installed")
def test_mujoco_halfcheetah_lists_qpos_qvel_with_joint_names():
    from rlcore.adapters.gymnasium import make_gym_env

    env = make_gym_env("HalfCheetah-v5", num_envs=2)
    try:
        ctx = describe_env(env, "HalfCheetah-v5")
    finally:
        env.close()
    assert ctx.family == "mujoco"
    assert ctx.spec("qpos").shape == ("N", 9) and ctx.spec("qvel").shape == ("N", 9)
    assert "qpos: float32[N, 9]" in ctx.text and "qvel: float32[N, 9]" in ctx.text
    assert "qpos[:, 0] rootx: translation along x of body torso (m)" in ctx.text
    assert "qvel[:, 8] ffoot" in ctx.text
    assert "action: float32[N, 6], each entry in [-1, 1]" in ctx.action_desc and "bthigh" in ctx.action_desc
    assert ctx.facts["root_x_vel"] == 0 and ctx.facts["root_z_pos"] == 1 and ctx.facts["root_pitch_pos"] == 2
    assert ctx.facts["terminates"] is False and ctx.max_episode_steps == 1000
    assert "cheetah" in ctx.success_desc.lower() and "qvel[:, 0]" in ctx.success_desc


# ------------------------------------------------------------------------------------------ prompts
def test_initial_and_reflection_messages(doorkey_ctx):
    msgs = initial_messages(doorkey_ctx, "Open the door and reach the goal.")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert REWARD_SIGNATURE in msgs[0]["content"] and "reward engineer" in msgs[0]["content"]
    assert doorkey_ctx.text in msgs[1]["content"] and "Open the door and reach the goal." in msgs[1]["content"]

    code = "def compute_reward(state, action, next_state):\n    return {'a': 1}"
    stats = {"components": {"dist": [(0, -1.0, -2.0, 0.0), (1000, -0.5, -1.0, 0.0)]}, "success": [(0, 0.0), (1000, 0.25)]}
    msgs = reflection_messages(doorkey_ctx, "Reach the goal.", code, format_reflection(stats), feedback="It spins in place.")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[2]["content"] == "```python\n" + code + "\n```"
    assert "success rate: 0, 0.25" in msgs[3]["content"] and "dist: mean -1, -0.5" in msgs[3]["content"]
    assert "It spins in place." in msgs[3]["content"]
    no_fb = reflection_messages(doorkey_ctx, "Reach the goal.", code, "stats")
    assert "watched the trained policy" not in no_fb[3]["content"]


def test_preference_messages_rank_without_numbers(doorkey_ctx):
    msgs = preference_messages(doorkey_ctx, "Reach the goal.", ["best_code = 1", "middle = 2", "worst = 3"])
    assert [m["role"] for m in msgs] == ["system", "user"]
    text = msgs[1]["content"]
    assert text.index("best_code = 1") < text.index("middle = 2") < text.index("worst = 3")
    assert "Rank 1 (best)" in text and "Rank 3 (worst)" in text
    assert "### Rank" in format_ranking(["x"]) and "(best)" not in format_ranking(["x"])


def test_user_templates_override_and_fall_back(tmp_path, doorkey_ctx):
    (tmp_path / "initial.txt").write_text("Env $env_id: do $task_description {not a placeholder}")
    msgs = initial_messages(doorkey_ctx, "the thing", templates_dir=tmp_path)
    assert msgs[1]["content"] == f"Env {DOORKEY}: do the thing {{not a placeholder}}"
    assert "reward engineer" in msgs[0]["content"]  # system.txt from the defaults


def test_missing_placeholder_names_file_and_placeholder(tmp_path, doorkey_ctx):
    (tmp_path / "initial.txt").write_text("Context:\n$env_context\nBudget: $budget\n")
    with pytest.raises(TemplateError) as err:
        initial_messages(doorkey_ctx, "x", templates_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "initial.txt") in msg and "$budget" in msg
    with pytest.raises(TemplateError, match="not a directory"):
        initial_messages(doorkey_ctx, "x", templates_dir=tmp_path / "nope")
    (tmp_path / "system.txt").write_text("cost: 5$")
    with pytest.raises(TemplateError, match=r"system\.txt"):
        render_template("system.txt", {}, tmp_path)


def test_format_reflection_thins_series_and_reports_errors():
    points = [(i * 1000, float(i), float(i) - 1, float(i) + 1) for i in range(31)]
    text = format_reflection({"components": {"progress": points}, "success": [(p[0], p[1] / 30) for p in points],
                              "fitness": 0.75, "code": "CODE_HERE"})
    assert "fitness (the task score used to compare candidates): 0.75" in text
    steps_line = next(line for line in text.splitlines() if line.startswith("training steps:"))
    steps = steps_line.split(": ")[1].split(", ")
    assert len(steps) == 10 and steps[0] == "0" and steps[-1] == "30k"
    assert "progress: mean 0, " in text and ", 30 | min -1," in text and "| max 1," in text
    assert "best success rate: 1 (at step 30k)" in text and "CODE_HERE" not in text
    assert "CODE_HERE" in format_reflection({"code": "CODE_HERE", "success": [(0, 0.0)]}, include_code=True)

    err = format_reflection({"code": "x", "error": "Traceback ...\n" + "x" * 5000 + "\nKeyError: 'goal'"})
    assert "failed" in err and err.endswith("KeyError: 'goal'") and len(err) < 1700
    assert "no reward component statistics" in format_reflection({})
