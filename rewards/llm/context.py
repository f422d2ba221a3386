"""What a reward writer needs to know about an environment, read from the environment itself.

:func:`describe_env` resets the env, reads :meth:`~rlcore.env.BatchedEnv.get_state`, the env's
self-description (:meth:`~rlcore.env.BatchedEnv.state_spec` and
:meth:`~rlcore.env.BatchedEnv.task_info`, see :mod:`rlcore.spec`) and the action space, and writes an
:class:`EnvContext`: one compact Pythonic line per privileged state tensor
(``agent_pos: int64[N, 2]  # (x, y) grid cell of the agent``; ``N`` is the batch size, every other
size is the real one), the encoding tables (MiniGrid object / colour / door-state ids), the actions,
the success condition in words, the episode length and the ``compute_reward`` contract.

What comes from where:

* family: ``task_info().family`` (``"minigrid"``, ``"mujoco"``; every other family is described as
  ``"other"``);
* each state line: ``state_spec()[key]`` (dtype, shape, meaning); a key the spec does not list is still
  shown with the dtype and shape of its tensor;
* MiniGrid object / colour / door-state ids: ``task_info().grid`` (:class:`~rlcore.spec.SymbolicGrid`);
  ``agent_dir`` ids and the cell in front: ``state_spec()["agent_dir"].codes``;
* actions: ``task_info().action_meanings``; grid size: ``task_info().grid_size``; success condition:
  ``task_info().success_rule`` and ``.success_kind``.

Nothing is written per task: the facts (is there a goal cell, a door, a key, lava; which MuJoCo joint
sits at which ``qpos`` index) are read from the reset state and the simulator model. ``rewards`` stays
independent of ``envs``: everything env-specific is what the env says about itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlcore.spec import StateField, TaskInfo

__all__ = ["EnvContext", "StateSpec", "describe_env", "REWARD_SIGNATURE", "REWARD_CONTRACT"]

#: The signature every reward program defines.
REWARD_SIGNATURE = (
    "def compute_reward(state: dict[str, torch.Tensor], action: torch.Tensor, "
    "next_state: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:"
)

#: The return contract and the rules a reward program follows (also shown to the model).
REWARD_CONTRACT = """\
- `state` is the privileged state before the action, `next_state` the state after it; both dicts hold the keys
  listed above, each tensor with leading batch dimension N. `action` is the batch of actions taken.
- Return `(reward, components)`: `reward` is float32[N]; `components` maps a short name to a float32[N]
  tensor for each term of the reward (they are logged during training and shown back to you).
- Work batched with torch tensor operations (no Python loop over the N envs), on the device of the inputs;
  do not modify the input tensors.
- Only `torch` and `math` are available (already imported; `import torch` / `import math` are allowed and do
  nothing). Helper functions may be defined before `compute_reward`. No other imports, no file or network access.
- The reward must be finite for every input."""

#: families described with their own sections; any other ``task_info().family`` is described as "other"
_FAMILIES = ("minigrid", "mujoco")

_MJ_JOINT_TYPES = {0: "free", 1: "ball", 2: "slide", 3: "hinge"}
#: per multi-dof joint type: names of its qpos entries and of its qvel entries
_MJ_COMPONENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "free": (("x", "y", "z", "qw", "qx", "qy", "qz"), ("vx", "vy", "vz", "wx", "wy", "wz")),
    "ball": (("qw", "qx", "qy", "qz"), ("wx", "wy", "wz")),
}
_AXES = ("x", "y", "z")


class StateSpec(NamedTuple):
    """One privileged state tensor: ``name``, ``dtype`` (``"int64"``), ``shape`` (``("N", 2)``), ``meaning``."""

    name: str
    dtype: str
    shape: tuple[str | int, ...]
    meaning: str

    def line(self) -> str:
        """``name: dtype[N, ...]  # meaning``."""
        dims = ", ".join(str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]  # {self.meaning}" if self.meaning else f"{self.name}: {self.dtype}[{dims}]"


@dataclass
class EnvContext:
    """Description of an environment for a reward writer (a model or the offline proposer).

    Attributes:
        env_id: the task id.
        family: ``"minigrid"``, ``"mujoco"`` or ``"other"`` (from ``task_info().family``).
        state_specs: one :class:`StateSpec` per privileged state tensor, in ``get_state`` order.
        action_desc: the action tensor and what its values mean.
        success_desc: the task's success condition / scoring in words.
        encodings: encoding tables (MiniGrid ids) as text; ``""`` where none.
        max_episode_steps: time limit, ``None`` where unknown.
        signature: the ``compute_reward`` signature line.
        text: the full description (everything above plus the return contract).
        facts: machine-readable facts read from the env (JSON-like): e.g. MiniGrid ``object_ids``,
            ``grid_size`` (W, H), ``has_goal``, ``has_door``, ``has_key``, ``has_lava``, ``has_target``,
            ``success_mode``, ``num_actions``, ``action_names``; MuJoCo ``qpos_labels``/``qvel_labels``
            (per index: joint, type, axis), ``root_x_vel``, ``root_z_pos``, ``root_pitch_pos``,
            ``root_quat_pos``, ``init_height``, ``dt``, ``terminates``, ``action_low``/``action_high``.
        task: the env's :meth:`~rlcore.env.BatchedEnv.task_info`, as read.
        fields: the env's :meth:`~rlcore.env.BatchedEnv.state_spec`, as read.
    """

    env_id: str
    family: str
    state_specs: list[StateSpec]
    action_desc: str
    success_desc: str
    encodings: str
    max_episode_steps: int | None
    signature: str
    text: str
    facts: dict[str, Any] = field(default_factory=dict)
    task: TaskInfo = field(default_factory=TaskInfo)
    fields: dict[str, StateField] = field(default_factory=dict)

    def spec(self, name: str) -> StateSpec | None:
        """The :class:`StateSpec` called ``name`` (``None`` if the state has no such key)."""
        for s in self.state_specs:
            if s.name == name:
                return s
        return None

    @property
    def state_keys(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.state_specs)


# ------------------------------------------------------------------------------------------ helpers
def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def _family(task: TaskInfo) -> str:
    """``task.family`` where the context has a section for it, else ``"other"``."""
    return task.family if task.family in _FAMILIES else "other"


def direction_vectors(fld: StateField | None) -> list[tuple[int, int]] | None:
    """The ``(dx, dy)`` step of each heading code of an ``agent_dir`` field, in code order.

    Read from the names of the field's first code table, each naming its axis as ``(+x)``, ``(-y)``, ...
    (e.g. ``{0: "right (+x)", 1: "down (+y)", ...}``); ``None`` when the field has no such table (codes
    missing, not ``0..K-1``, or a name without an axis).
    """
    if fld is None or not fld.codes:
        return None
    table = next(iter(fld.codes.values()))
    if sorted(table) != list(range(len(table))):
        return None
    steps = []
    for code in range(len(table)):
        m = re.search(r"\(([+-])([xy])\)", table[code])
        if m is None:
            return None
        sign = 1 if m.group(1) == "+" else -1
        steps.append((sign, 0) if m.group(2) == "x" else (0, sign))
    return steps


def _code_names(fld: StateField | None) -> dict[int, str]:
    """The first code table of ``fld`` (``{}`` when it has none)."""
    if fld is None or not fld.codes:
        return {}
    return dict(next(iter(fld.codes.values())))


def _unwrapped_envs(env: Any) -> list[Any]:
    """Host-side single envs behind a gymnasium adapter (``[]`` when there are none)."""
    get_attr = getattr(env, "get_attr", None)
    if get_attr is None:
        return []
    try:
        return list(get_attr("unwrapped"))
    except Exception:
        return []


def _max_steps(env: Any) -> int | None:
    for name in ("max_steps", "max_episode_steps"):
        v = getattr(env, name, None)
        if isinstance(v, (int, np.integer)) and v > 0:
            return int(v)
    get_attr = getattr(env, "get_attr", None)
    if get_attr is not None:
        try:
            spec = get_attr("spec")[0]
            if spec is not None and spec.max_episode_steps:
                return int(spec.max_episode_steps)
        except Exception:
            pass
        try:
            v = get_attr("max_steps")[0]
            if isinstance(v, (int, np.integer)):
                return int(v)
        except Exception:
            pass
    return None


def _space_desc(space: gym.Space) -> str:
    """Action tensor description for a generic space."""
    if isinstance(space, gym.spaces.Discrete):
        lo = int(space.start)
        return f"action: int64[N], integer in [{lo}, {lo + int(space.n)})"
    if isinstance(space, gym.spaces.Box):
        low, high = np.asarray(space.low).reshape(-1), np.asarray(space.high).reshape(-1)
        shape = ", ".join(str(d) for d in space.shape)
        if low.size and np.all(low == low[0]) and np.all(high == high[0]):
            bounds = f"each entry in [{low[0]:g}, {high[0]:g}]"
        else:
            bounds = "bounds low=" + np.array2string(low, precision=3) + " high=" + np.array2string(high, precision=3)
        return f"action: float32[N, {shape}], {bounds}"
    return f"action: batched {space}"


# ----------------------------------------------------------------------------------------- MiniGrid
def _action_names(task: TaskInfo, num_actions: int) -> tuple[list[str], list[str]]:
    """(names, ``"name: meaning"`` entries) of the first ``num_actions`` actions of ``task.action_meanings``."""
    entries = list(task.action_meanings or ())[:num_actions]
    return [e.split(":", 1)[0].strip() for e in entries], entries


def _minigrid_parts(env: Any, state: dict[str, torch.Tensor], task: TaskInfo,
                    fields: Mapping[str, StateField]) -> tuple[str, str, str, dict[str, Any]]:
    """(encodings text, action description, success description, facts) of a MiniGrid env."""
    grid_vocab = task.grid
    objects = {n: i for i, n in enumerate(grid_vocab.objects)} if grid_vocab else {}
    colours = {n: i for i, n in enumerate(grid_vocab.colors)} if grid_vocab else {}
    door_states = {n: i for i, n in enumerate(grid_vocab.states)} if grid_vocab else {}
    space = env.single_action_space
    num_actions = int(getattr(space, "n", len(task.action_meanings or ())))
    names, entries = _action_names(task, num_actions)
    facts: dict[str, Any] = {
        "object_ids": objects, "colour_ids": colours, "door_state_ids": door_states,
        "num_actions": num_actions, "action_names": names,
    }
    enc = []
    if grid_vocab:
        enc += ["object type ids: " + ", ".join(f"{k}={v}" for k, v in objects.items()),
                "colour ids: " + ", ".join(f"{k}={v}" for k, v in colours.items()),
                "door state ids: " + ", ".join(f"{k}={v}" for k, v in door_states.items())]
    headings = _code_names(fields.get("agent_dir"))
    steps = direction_vectors(fields.get("agent_dir"))
    facts["dir_vectors"] = [list(v) for v in steps] if steps else None
    if headings:
        front = ("; the cell in front is agent_pos + [" + ", ".join(f"({dx}, {dy})" for dx, dy in steps)
                 + "][agent_dir]") if steps else ""
        enc.append("agent_dir ids: " + ", ".join(f"{c}={n}" for c, n in sorted(headings.items())) + front)
    if len(entries) == num_actions:
        action_desc = f"action: int64[N], one of {num_actions} actions:\n" + "\n".join(
            f"  {i} = {e}" for i, e in enumerate(entries))
    else:
        action_desc = _space_desc(space)

    grid = state.get(task.grid_key) if task.grid_key else None
    if task.grid_size is not None:
        facts["grid_size"] = [int(task.grid_size[0]), int(task.grid_size[1])]  # (W, H)
    if grid is not None and objects:
        types = grid[..., 0]
        for name in ("key", "lava", "box", "ball"):
            facts[f"has_{name}"] = name in objects and bool((types == objects[name]).any())
    if "goal_pos" in state:
        facts["has_goal"] = bool((state["goal_pos"][:, 0] >= 0).any())
    if "door_state" in state:
        facts["has_door"] = bool((state["door_state"] >= 0).any())
        facts["door_locked"] = "locked" in door_states and bool((state["door_state"] == door_states["locked"]).any())
    if "target" in state and "empty" in objects:
        facts["has_target"] = bool((state["target"][:, 0] != objects["empty"]).any())
    if "obstacle_pos" in state:
        facts["num_obstacles"] = int(state["obstacle_pos"].shape[1])
    facts["success_mode"] = task.success_kind

    lines = []
    missions = _mission_texts(env)
    if missions:
        if len(missions) == 1:
            lines.append(f"Mission: \"{missions[0]}\"")
        else:
            shown = missions[:12]
            more = f" ... ({len(missions)} in all)" if len(missions) > len(shown) else ""
            lines.append("Missions (state['mission'] indexes them): "
                         + "; ".join(f"{i}=\"{m}\"" for i, m in enumerate(shown)) + more)
    max_steps = _max_steps(env)
    env_reward = "1 - 0.9 * step_count / max_steps" if max_steps else "positive"
    lines.append(f"Success: {task.success_rule}. On success the environment reward is {env_reward}, otherwise 0.")
    if facts.get("has_lava"):
        lines.append(f"Moving onto a lava cell (type {objects['lava']}) ends the episode without success.")
    if facts.get("num_obstacles"):
        lines.append(f"{facts['num_obstacles']} obstacles (blue balls) move randomly every step; moving forward into "
                     "an obstacle or a wall ends the episode with environment reward -1.")
    if facts.get("has_key") and facts.get("door_locked"):
        lines.append(f"A locked door (door_state {door_states['locked']}) opens with `toggle` only while carrying a key "
                     "of the door's colour.")
    lines.append("Reaching the time limit truncates the episode without success.")
    return "\n".join(enc), action_desc, "\n".join(lines), facts


def _mission_texts(env: Any) -> list[str]:
    """The env's mission texts, from its ``missions`` list or its single envs' ``mission`` (``[]`` if none)."""
    missions = getattr(env, "missions", None)
    if isinstance(missions, (list, tuple)) and missions and all(isinstance(m, str) for m in missions):
        return list(missions)
    get_attr = getattr(env, "get_attr", None)
    if get_attr is not None:
        try:
            return list(dict.fromkeys(str(m) for m in get_attr("mission")))
        except Exception:
            pass
    return []


# ------------------------------------------------------------------------------------------- MuJoCo
def _mujoco_labels(model: Any) -> tuple[list[dict], list[dict]]:
    """Per-index labels of qpos and qvel: joint name, joint type, axis / component, root flag."""
    qpos: list[dict] = [{} for _ in range(int(model.nq))]
    qvel: list[dict] = [{} for _ in range(int(model.nv))]
    for j in range(int(model.njnt)):
        name = model.joint(j).name or f"joint{j}"
        jtype = _MJ_JOINT_TYPES.get(int(model.jnt_type[j]), "unknown")
        body = int(model.jnt_bodyid[j])
        root = int(model.body_parentid[body]) == 0
        body_name = model.body(body).name
        qa, da = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
        base = {"joint": name, "type": jtype, "body": body_name, "root": root}
        if jtype in _MJ_COMPONENTS:
            pos_names, vel_names = _MJ_COMPONENTS[jtype]
            for i, c in enumerate(pos_names):
                qpos[qa + i] = {**base, "component": c}
            for i, c in enumerate(vel_names):
                qvel[da + i] = {**base, "component": c}
        else:
            axis = np.asarray(model.jnt_axis[j], dtype=np.float64)
            k = int(np.argmax(np.abs(axis)))
            ax = _AXES[k] if abs(abs(axis[k]) - 1.0) < 1e-6 else "(" + ", ".join(f"{a:.2f}" for a in axis) + ")"
            qpos[qa] = {**base, "axis": ax}
            qvel[da] = {**base, "axis": ax}
    return qpos, qvel


def _label_text(lab: dict, velocity: bool) -> str:
    if not lab:
        return "?"
    if "component" in lab:
        return f"{lab['joint']} ({lab['type']} joint of body {lab['body']}) {lab['component']}"
    unit = ("m/s" if lab["type"] == "slide" else "rad/s") if velocity else ("m" if lab["type"] == "slide" else "rad")
    what = "translation along" if lab["type"] == "slide" else "rotation about"
    return f"{lab['joint']}: {what} {lab['axis']} of body {lab['body']} ({unit})"


def _actuator_name(model: Any, i: int) -> str:
    """The actuator's name, else the name of the joint it drives, else ``actuator{i}``."""
    name = model.actuator(i).name
    if name:
        return name
    try:
        if int(model.actuator_trntype[i]) == 0:  # mjTRN_JOINT
            joint = model.joint(int(model.actuator_trnid[i, 0])).name
            if joint:
                return f"joint {joint}"
    except Exception:
        pass
    return f"actuator{i}"


def _doc_section(doc: str, title: str, limit: int = 900) -> str:
    """The text of markdown section ``## title`` of a docstring, whitespace-collapsed, cut at ``limit``."""
    m = re.search(rf"^\s*##\s+{re.escape(title)}\s*$(.*?)(?=^\s*##\s|\Z)", doc, re.M | re.S)
    if not m:
        return ""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", m.group(1))  # markdown links -> their text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def _mujoco_parts(env: Any, state: dict[str, torch.Tensor]) -> tuple[str, str, dict[str, Any]]:
    """(index tables text, success description, facts) of a MuJoCo env."""
    facts: dict[str, Any] = {"nq": int(state["qpos"].shape[1]), "nv": int(state["qvel"].shape[1])}
    unwrapped = _unwrapped_envs(env)
    u = unwrapped[0] if unwrapped else None
    model = getattr(u, "model", None)
    tables = ""
    if model is not None:
        qpos_l, qvel_l = _mujoco_labels(model)
        facts["qpos_labels"], facts["qvel_labels"] = qpos_l, qvel_l
        rows = ["qpos index table:"] + [f"  qpos[:, {i}] {_label_text(lab, False)}" for i, lab in enumerate(qpos_l)]
        rows += ["qvel index table:"] + [f"  qvel[:, {i}] {_label_text(lab, True)}" for i, lab in enumerate(qvel_l)]
        tables = "\n".join(rows)
        for i, lab in enumerate(qvel_l):
            if lab.get("root") and (lab.get("axis") == "x" and lab["type"] == "slide" or lab.get("component") == "vx"):
                facts["root_x_vel"] = i
                break
        for i, lab in enumerate(qpos_l):
            if not lab.get("root"):
                continue
            if (lab.get("axis") == "z" and lab["type"] == "slide") or lab.get("component") == "z":
                facts.setdefault("root_z_pos", i)
            if lab["type"] == "hinge" and lab.get("axis") == "y":
                facts.setdefault("root_pitch_pos", i)
            if lab["type"] == "free" and lab.get("component") == "qw":
                facts.setdefault("root_quat_pos", i)
        if "root_z_pos" in facts:
            facts["init_height"] = round(float(state["qpos"][:, facts["root_z_pos"]].float().mean()), 4)
    dt = getattr(u, "dt", None)
    if dt is not None:
        facts["dt"] = float(dt)
    healthy = {}
    if u is not None:
        for attr, value in sorted(vars(u).items()):
            if attr.startswith("_healthy_") and attr.endswith("range"):
                healthy[attr[1:]] = tuple(float(v) for v in value)
        term = getattr(u, "_terminate_when_unhealthy", None)
        facts["terminates"] = bool(term) and bool(healthy)
    else:
        facts["terminates"] = False
    facts["healthy_ranges"] = healthy

    lines = []
    doc = type(u).__doc__ if u is not None else None
    desc = _doc_section(doc, "Description") if doc else ""
    if desc:
        lines.append(f"About the environment: {desc}")
    lines.append("There is no success flag: candidates are judged by the environment's own episode return "
                 "(for locomotion tasks, forward progress of the root along +x"
                 + (f", x velocity = qvel[:, {facts['root_x_vel']}]" if "root_x_vel" in facts else "") + ").")
    if facts["terminates"]:
        z = f" (torso height is qpos[:, {facts['root_z_pos']}])" if "root_z_pos" in facts else ""
        ranges = ", ".join(f"{k}={v}" for k, v in healthy.items())
        lines.append(f"The episode terminates early when the body becomes unhealthy: {ranges}{z}.")
    if dt is not None:
        lines.append(f"One env step lasts dt = {float(dt):g} s.")
    return tables, "\n".join(lines), facts


# --------------------------------------------------------------------------------------------- main
def describe_env(env: Any, env_id: str) -> EnvContext:
    """Describe ``env`` (a :class:`~rlcore.env.BatchedEnv`) for a reward writer.

    Calls ``env.reset(seed=0)`` (the env's state changes), ``env.get_state()``, ``env.state_spec()`` and
    ``env.task_info()``.

    Args:
        env: the batched env (MiniGrid engine, gymnasium adapter, any ``BatchedEnv``).
        env_id: its id, shown in the text and used to recognise the family.

    Returns:
        an :class:`EnvContext`; ``.text`` is the full description.
    """
    env.reset(seed=0)
    state = env.get_state()
    if not isinstance(state, dict):
        raise TypeError(f"env.get_state() of {env_id!r} must return a dict of tensors, got {type(state).__name__}")
    fields = dict(env.state_spec())
    task = env.task_info()
    family = _family(task)
    space = env.single_action_space

    encodings, tables = "", ""
    facts: dict[str, Any] = {}
    if family == "minigrid":
        encodings, action_desc, success_desc, facts = _minigrid_parts(env, state, task, fields)
    elif family == "mujoco":
        tables, success_desc, facts = _mujoco_parts(env, state)
        action_desc = _space_desc(space)
        if isinstance(space, gym.spaces.Box):
            facts["action_low"] = np.asarray(space.low, dtype=np.float64).reshape(-1).tolist()
            facts["action_high"] = np.asarray(space.high, dtype=np.float64).reshape(-1).tolist()
            model = getattr((_unwrapped_envs(env) or [None])[0], "model", None)
            if model is not None and int(model.nu) == int(np.prod(space.shape)):
                names = [_actuator_name(model, i) for i in range(int(model.nu))]
                action_desc += "; action[:, i] drives actuator " + ", ".join(f"{i}={n}" for i, n in enumerate(names))
    else:
        action_desc = _space_desc(space)
        success_desc = ("The task is judged by the environment's own success flag (info['success']) where it has "
                        "one, otherwise by its episode return.")
    if isinstance(space, gym.spaces.Box):
        facts.setdefault("action_dim", int(np.prod(space.shape)))
    max_steps = _max_steps(env)
    facts["family"] = family

    specs = []
    for name, t in state.items():  # in get_state() order; a key the spec lacks is described by its tensor
        fld = fields.get(name)
        dims = fld.shape if fld is not None else t.shape[1:]
        dtype = str(fld.dtype).removeprefix("torch.") if fld is not None else _dtype_name(t)
        specs.append(StateSpec(name, dtype, ("N", *[int(d) for d in dims]), fld.meaning if fld is not None else ""))

    text = _render_text(env_id, family, specs, encodings, tables, action_desc, success_desc, max_steps, facts)
    return EnvContext(env_id=env_id, family=family, state_specs=specs, action_desc=action_desc,
                      success_desc=success_desc, encodings=encodings, max_episode_steps=max_steps,
                      signature=REWARD_SIGNATURE, text=text, facts=facts, task=task, fields=fields)


def _render_text(env_id: str, family: str, specs: list[StateSpec], encodings: str, tables: str,
                 action_desc: str, success_desc: str, max_steps: int | None, facts: dict[str, Any]) -> str:
    title = {"minigrid": "MiniGrid gridworld", "mujoco": "MuJoCo simulation", "other": "environment"}[family]
    size = ""
    if "grid_size" in facts:
        size = f", {facts['grid_size'][0]}x{facts['grid_size'][1]} grid: W x H, outer border is wall"
    parts = [f"# Environment: {env_id} ({title}{size}), batched over N parallel copies"]
    parts.append("## State: dict[str, torch.Tensor] (same keys in state and next_state)")
    if specs:
        parts.append("\n".join(s.line() for s in specs))
    else:
        parts.append("(this environment exposes no privileged state: state and next_state are empty dicts)")
    if tables:
        parts.append(tables)
    if encodings:
        parts.append("## Encodings\n" + encodings)
    parts.append("## Actions\n" + action_desc)
    task = success_desc
    if max_steps:
        task += f"\nEpisodes last at most {max_steps} steps."
    parts.append("## Task\n" + task)
    parts.append("## Reward function\n```python\n" + REWARD_SIGNATURE + "\n    ...\n```\n" + REWARD_CONTRACT)
    return "\n\n".join(parts)
