"""Conversion between Farama ``MiniGridEnv`` instances and batch slots (host side, not hot path)."""

from __future__ import annotations

import numpy as np

from . import constants as C
from .tasks import TaskSpec


def _encode(obj) -> tuple[int, int, int]:
    return C.EMPTY_CELL if obj is None else tuple(int(v) for v in obj.encode())


def check_compatible(fenv, spec: TaskSpec) -> None:
    """Raise ``ValueError`` unless ``fenv`` is a Farama env of ``spec``'s task."""
    name = type(fenv).__name__
    problems = []
    if name != spec.family:
        problems.append(f"class {name} (expected {spec.family})")
    if (getattr(fenv, "width", None), getattr(fenv, "height", None)) != (spec.width, spec.height):
        problems.append(f"size {getattr(fenv, 'width', None)}x{getattr(fenv, 'height', None)} "
                        f"(expected {spec.width}x{spec.height})")
    if getattr(fenv, "max_steps", None) != spec.max_steps:
        problems.append(f"max_steps {getattr(fenv, 'max_steps', None)} (expected {spec.max_steps})")
    if getattr(fenv, "see_through_walls", None) != spec.see_through_walls:
        problems.append("see_through_walls differs")
    if getattr(fenv, "agent_view_size", None) != 7:
        problems.append("agent_view_size must be 7")
    if problems:
        raise ValueError(f"cannot load a Farama env into a batched {spec.env_id}: " + "; ".join(problems)
                         + " (pass the unwrapped env of the same task: gymnasium.make(id).unwrapped)")


def extract_state(fenv, spec: TaskSpec, missions: list[str]) -> dict[str, np.ndarray]:
    """State of a Farama env as arrays in the batched layout (one slot, no batch dim)."""
    check_compatible(fenv, spec)
    if fenv.agent_pos is None or fenv.grid is None:
        raise ValueError("the Farama env must be reset before loading it")
    H, W = spec.height, spec.width
    grid = np.zeros((H, W, 3), dtype=np.uint8)
    contains = np.zeros((H, W, 3), dtype=np.uint8)
    contains[...] = C.EMPTY_CELL
    goal = (-1, -1)
    door = (-1, -1)
    locked_door = (-1, -1)
    for y in range(H):
        for x in range(W):
            obj = fenv.grid.get(x, y)
            grid[y, x] = _encode(obj)
            if obj is not None:
                if obj.type == "box" and obj.contains is not None:
                    if not spec.has_boxes:
                        raise ValueError(f"{spec.env_id} does not model box contents")
                    contains[y, x] = _encode(obj.contains)
                if obj.type == "goal" and goal == (-1, -1):
                    goal = (x, y)
                if obj.type == "door" and door == (-1, -1):
                    door = (x, y)
                if obj.type == "door" and obj.is_locked and locked_door == (-1, -1):
                    locked_door = (x, y)
    border = np.concatenate([grid[0], grid[-1], grid[:, 0], grid[:, -1]])
    if spec.walled_border and not (border == np.array(C.WALL_CELL, dtype=np.uint8)).all():
        raise ValueError(f"the outer border of the grid must be grey wall (true of every {spec.env_id} layout)")
    if spec.door_of_interest == "none":
        door = (-1, -1)
    elif spec.door_of_interest == "locked":
        door = locked_door
    elif getattr(fenv, "door", None) is not None and getattr(fenv.door, "cur_pos", None) is not None:
        door = tuple(int(v) for v in fenv.door.cur_pos)
    carrying = fenv.carrying
    ccont = C.EMPTY_CELL
    if carrying is not None and carrying.type == "box" and carrying.contains is not None:
        ccont = _encode(carrying.contains)
    mission = fenv.mission
    if mission not in missions:
        raise ValueError(f"mission {mission!r} is not in the vocabulary of {spec.env_id}")
    out = {
        "grid": grid,
        "agent_pos": np.array([int(fenv.agent_pos[0]), int(fenv.agent_pos[1])], dtype=np.int64),
        "agent_dir": np.int64(int(fenv.agent_dir)),
        "carrying": np.array(_encode(carrying), dtype=np.uint8),
        "step_count": np.int64(int(fenv.step_count)),
        "mission": np.int64(missions.index(mission)),
        "goal_pos": np.array(goal, dtype=np.int64),
        "door_pos": np.array(door, dtype=np.int64),
        "contains": contains,
        "carrying_contains": np.array(ccont, dtype=np.uint8),
    }
    if spec.num_obstacles:
        out["obstacle_pos"] = np.array([[int(v) for v in o.cur_pos] for o in fenv.obstacles], dtype=np.int64)
    if spec.success_mode == "pickup":
        out["target"] = np.array((C.OBJECT_NAMES.index(fenv.obj.type), C.COLOR_NAMES.index(fenv.obj.color), 0), dtype=np.uint8)
    return out


def new_farama_env(env_id: str):
    """A reset, unwrapped Farama env of ``env_id``."""
    import gymnasium as gym
    import minigrid  # noqa: F401  (registers the ids)

    fenv = gym.make(env_id).unwrapped
    fenv.reset(seed=0)
    return fenv


def build_farama_env(env, index: int, fenv=None):
    """A reset Farama env of ``env.env_id`` overwritten with the state of batch slot ``index``.

    ``fenv``: a Farama env of the same task to overwrite instead of making a new one (rendering reuses
    one env for every frame).
    """
    from minigrid.core.grid import Grid
    from minigrid.core.world_object import WorldObj

    if fenv is None:
        fenv = new_farama_env(env.env_id)
    st = env.state
    g = st["grid"][index].cpu().numpy()
    grid, _ = Grid.decode(g.transpose(1, 0, 2).copy())
    if "contains" in st:
        cont = st["contains"][index].cpu().numpy()
        for y in range(env.height):
            for x in range(env.width):
                obj = grid.get(x, y)
                if obj is not None and obj.type == "box":
                    obj.contains = WorldObj.decode(*cont[y, x])
    fenv.grid = grid
    fenv.agent_pos = tuple(int(v) for v in st["agent_pos"][index].cpu())
    fenv.agent_dir = int(st["agent_dir"][index])
    fenv.carrying = WorldObj.decode(*st["carrying"][index].cpu().numpy())
    if fenv.carrying is not None and "carrying_contains" in st:
        fenv.carrying.contains = WorldObj.decode(*st["carrying_contains"][index].cpu().numpy())
    fenv.step_count = int(st["step_count"][index])
    fenv.mission = env.missions[int(st["mission"][index])]
    if "obstacle_pos" in st:  # Dynamic-Obstacles: the env moves the Ball objects it keeps in a list
        fenv.obstacles = []
        for x, y in st["obstacle_pos"][index].tolist():
            obj = grid.get(x, y)
            obj.cur_pos = (x, y)
            fenv.obstacles.append(obj)
    return fenv
