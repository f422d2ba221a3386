"""What an environment says about itself: its privileged state and its task.

* :class:`StateField`: dtype, per-env shape and meaning of one ``get_state()`` key;
  :meth:`rlcore.env.BatchedEnv.state_spec` returns ``dict[str, StateField]``.
* :class:`TaskInfo`: task family, whether and when ``info["success"]`` is True, and for grid worlds a
  :class:`SymbolicGrid` vocabulary plus the grid size; :meth:`rlcore.env.BatchedEnv.task_info`
  returns one.
* :class:`SymbolicGrid`: the vocabulary of a symbolic grid world whose cells are
  ``(object, colour, state)`` triples of small integers (e.g. Farama MiniGrid's ``Grid.encode``). An
  env attaches it to its observation space with :func:`describe_grid_obs`, so networks built from
  the space alone (:class:`rlcore.nets.GridEncoder`) know the vocabulary sizes; :func:`grid_of`
  reads it back, and :mod:`rlcore.spaces` keeps it in checkpoints.
* :func:`check_state`: validates a ``get_state()`` / ``info["final_state"]`` dict against a spec.

Everything here is built once at setup; nothing is meant for the stepping loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch

__all__ = ["StateField", "SymbolicGrid", "TaskInfo", "check_state", "describe_grid_obs", "grid_of"]

#: attribute of an observation space holding its :class:`SymbolicGrid` (see :func:`describe_grid_obs`)
GRID_ATTR = "symbolic_grid"


@dataclass(frozen=True)
class StateField:
    """One key of ``get_state()``: a tensor ``dtype[N, *shape]``.

    Attributes:
        dtype: torch dtype of the tensor.
        shape: per-env shape (without the leading ``N``), e.g. ``(H, W, 3)`` or ``()`` for a scalar.
        meaning: one line: what it holds, units, coordinate order, sentinel values.
        codes: optional value tables, ``{table name: {code: name}}``; for a tensor with a channel
            axis the tables are listed in channel order (e.g. ``{"object": ..., "colour": ...,
            "state": ...}`` for a grid of cell triples).
    """

    dtype: torch.dtype
    shape: tuple[int, ...]
    meaning: str
    codes: Mapping[str, Mapping[int, str]] | None = None

    def describe(self) -> str:
        """``"uint8[N, 7, 7, 3]: meaning"``."""
        dtype = str(self.dtype).removeprefix("torch.")
        return f"{dtype}[{', '.join(['N', *map(str, self.shape)])}]: {self.meaning}"


@dataclass(frozen=True)
class SymbolicGrid:
    """Vocabulary of a symbolic grid world: each cell is an ``(object, colour, state)`` triple.

    Attributes:
        objects: object-type names indexed by code (channel 0), e.g. ``("unseen", "empty", "wall", ...)``.
        colors: colour names indexed by code (channel 1).
        states: state names indexed by code (channel 2), e.g. door ``("open", "closed", "locked")``.
        wall: object code of a wall (never walkable, blocks the view).
        blocking: object codes the agent cannot step onto (``wall`` included; a door blocks only
            while its state is not ``open_state``).
        open_state: state code of an open (walkable) door-like object.
        image_key: observation key of the symbolic image ``uint8[N, h, w, 3]``.
        direction_key: observation key of the agent's heading (a ``Discrete``), or ``None``.
    """

    objects: tuple[str, ...]
    colors: tuple[str, ...]
    states: tuple[str, ...]
    wall: int
    blocking: tuple[int, ...]
    open_state: int = 0
    image_key: str = "image"
    direction_key: str | None = "direction"

    @property
    def num_objects(self) -> int:
        return len(self.objects)

    @property
    def num_colors(self) -> int:
        return len(self.colors)

    @property
    def num_states(self) -> int:
        return len(self.states)

    @property
    def vocab_sizes(self) -> tuple[int, int, int]:
        """``(num_objects, num_colors, num_states)``: codes of channel ``c`` lie in ``[0, vocab_sizes[c])``."""
        return self.num_objects, self.num_colors, self.num_states

    def codes(self) -> dict[str, dict[int, str]]:
        """The tables as ``{"object": {code: name}, "colour": ..., "state": ...}`` (channel order)."""
        return {name: dict(enumerate(table))
                for name, table in (("object", self.objects), ("colour", self.colors), ("state", self.states))}

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, ints, strings) for checkpoints; inverse of :meth:`from_dict`."""
        return {"objects": list(self.objects), "colors": list(self.colors), "states": list(self.states),
                "wall": self.wall, "blocking": list(self.blocking), "open_state": self.open_state,
                "image_key": self.image_key, "direction_key": self.direction_key}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SymbolicGrid:
        return cls(objects=tuple(d["objects"]), colors=tuple(d["colors"]), states=tuple(d["states"]),
                   wall=int(d["wall"]), blocking=tuple(int(b) for b in d["blocking"]),
                   open_state=int(d.get("open_state", 0)), image_key=str(d.get("image_key", "image")),
                   direction_key=d.get("direction_key", "direction"))


@dataclass(frozen=True)
class TaskInfo:
    """What a consumer needs to know about an env's task, beyond its spaces.

    Attributes:
        family: lowercase task family: ``"minigrid"``, ``"mujoco"``, ``"classic_control"``, ... or
            ``"other"``; for gymnasium ids, the package of the env's entry point.
        has_success: whether the task defines success at all (``info["success"]`` can be True).
        success_rule: when ``info["success"]`` is True, in words (or why it never is).
        success_kind: a short machine-readable tag of the rule where the env has one, e.g. ``"goal"``
            (reach ``goal_pos``), ``"unlock"`` (open the door at ``door_pos``), ``"pickup"`` (pick up
            ``target``); ``""`` where not classified.
        grid: the symbolic-grid vocabulary of the observation image and of the state grid, for grid
            worlds; ``None`` otherwise.
        grid_size: ``(width, height)`` of the world in cells, for grid worlds.
        grid_key: the ``get_state()`` key of the whole grid ``uint8[N, H, W, 3]`` indexed
            ``[n, y, x]``, or ``None`` when the state has none.
        action_meanings: for a ``Discrete`` action space, one entry per action code in code order,
            ``"name: what it does"`` (e.g. ``"toggle: open/close the door in front"``); ``None`` where
            the env does not name its actions.
        notes: anything else worth a line (reward scale, termination, ...).
    """

    family: str = "other"
    has_success: bool = False
    success_rule: str = "not defined: info['success'] is always False"
    success_kind: str = ""
    grid: SymbolicGrid | None = None
    grid_size: tuple[int, int] | None = None
    grid_key: str | None = None
    action_meanings: tuple[str, ...] | None = None
    notes: str = ""


# ---------------------------------------------------------------------------- observation spaces
def describe_grid_obs(space: gym.Space, grid: SymbolicGrid) -> gym.Space:
    """Attach ``grid`` to the Dict observation ``space`` (in place) and return ``space``.

    Lets code that only sees the space (policy and reward encoders, checkpoints) read the vocabulary
    with :func:`grid_of`. Deep copies and pickles of the space keep it; spaces rebuilt from scratch
    do not (copy it with this function).
    """
    if not isinstance(space, gym.spaces.Dict) or grid.image_key not in space.spaces:
        raise ValueError(f"a symbolic grid describes a Dict observation with key {grid.image_key!r}, got {space}")
    setattr(space, GRID_ATTR, grid)
    return space


def grid_of(space: gym.Space) -> SymbolicGrid | None:
    """The :class:`SymbolicGrid` attached to ``space`` by :func:`describe_grid_obs`, else ``None``."""
    grid = getattr(space, GRID_ATTR, None)
    return grid if isinstance(grid, SymbolicGrid) else None


# --------------------------------------------------------------------------------------- checks
def check_state(state: Mapping[str, torch.Tensor], spec: Mapping[str, StateField], num_envs: int | None = None,
                where: str = "get_state()") -> None:
    """Raise ``ValueError`` naming the key when ``state`` does not match ``spec`` exactly.

    Checks that the keys are the same, and that each tensor is ``spec[key].dtype`` with shape
    ``[num_envs, *spec[key].shape]`` (any leading size when ``num_envs`` is None). ``where`` names the
    dict in the message (e.g. ``"info['final_state']"``). Reads shapes and dtypes only: no host sync.
    """
    missing = [k for k in spec if k not in state]
    extra = [k for k in state if k not in spec]
    if missing or extra:
        raise ValueError(f"{where} keys differ from state_spec(): missing {missing}, not in the spec {extra}")
    for key, fld in spec.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{where}[{key!r}] is a {type(value).__name__}, state_spec() says a tensor {fld.describe()}")
        if value.dtype != fld.dtype:
            raise ValueError(f"{where}[{key!r}] has dtype {value.dtype}, state_spec() says {fld.describe()}")
        if value.dim() == 0:
            raise ValueError(f"{where}[{key!r}] is a 0-d tensor without the leading N, state_spec() says {fld.describe()}")
        expected = (num_envs if num_envs is not None else value.shape[0], *fld.shape)
        if tuple(value.shape) != expected:
            raise ValueError(f"{where}[{key!r}] has shape {tuple(value.shape)}, state_spec() says {fld.describe()}"
                             + (f" with N={num_envs}" if num_envs is not None else ""))

