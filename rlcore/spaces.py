"""gymnasium spaces <-> plain dicts, so checkpoints hold no pickled objects (safe to load).

A Dict space's :class:`~rlcore.spec.SymbolicGrid` description (see :func:`rlcore.spec.describe_grid_obs`)
is kept under ``"symbolic_grid"``, so encoders rebuilt from a checkpoint know the grid vocabulary.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlcore.spec import SymbolicGrid, describe_grid_obs, grid_of


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """A JSON-able description of ``space`` (Box, Discrete, MultiDiscrete, MultiBinary, Dict, Text)."""
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": np.asarray(space.low, dtype=np.float64).ravel().tolist(),
            "high": np.asarray(space.high, dtype=np.float64).ravel().tolist(),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).ravel().tolist(), "shape": list(space.shape)}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": list(np.atleast_1d(space.n))}
    if isinstance(space, gym.spaces.Dict):
        out: dict[str, Any] = {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
        grid = grid_of(space)
        if grid is not None:
            out["symbolic_grid"] = grid.to_dict()
        return out
    if isinstance(space, gym.spaces.Text):
        return {"type": "Text", "max_length": int(space.max_length)}
    raise TypeError(f"cannot describe space {space}")


def space_from_dict(d: dict[str, Any]) -> gym.Space:
    """Inverse of :func:`space_to_dict`; raises ``ValueError`` on a malformed description."""
    try:
        kind = d["type"]
        if kind == "Box":
            shape = tuple(int(x) for x in d["shape"])
            low = np.asarray(d["low"], dtype=np.float64).reshape(shape)
            high = np.asarray(d["high"], dtype=np.float64).reshape(shape)
            return gym.spaces.Box(low.astype(d["dtype"]), high.astype(d["dtype"]), shape=shape, dtype=np.dtype(d["dtype"]))
        if kind == "Discrete":
            return gym.spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
        if kind == "MultiDiscrete":
            return gym.spaces.MultiDiscrete(np.asarray(d["nvec"]).reshape(d["shape"]))
        if kind == "MultiBinary":
            n = d["n"]
            return gym.spaces.MultiBinary(n[0] if len(n) == 1 else n)
        if kind == "Dict":
            space = gym.spaces.Dict({k: space_from_dict(v) for k, v in d["spaces"].items()})
            if d.get("symbolic_grid") is not None:
                describe_grid_obs(space, SymbolicGrid.from_dict(d["symbolic_grid"]))
            return space
        if kind == "Text":
            return gym.spaces.Text(int(d["max_length"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed space description {d!r}: {exc}") from exc
    raise ValueError(f"unknown space type {d.get('type')!r}")


def same_space(saved: Any, space: gym.Space) -> bool:
    """Whether a saved description (:func:`space_to_dict`) describes ``space``. A saved Dict space
    without the ``"symbolic_grid"`` description (checkpoints written before envs described their
    grids) matches the same space with one."""
    current = space_to_dict(space)
    if isinstance(saved, dict) and "symbolic_grid" not in saved:
        current.pop("symbolic_grid", None)
    return saved == current
