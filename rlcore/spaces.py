"""gymnasium spaces <-> plain dicts, so checkpoints hold no pickled objects (safe to load)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


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
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
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
            return gym.spaces.Dict({k: space_from_dict(v) for k, v in d["spaces"].items()})
        if kind == "Text":
            return gym.spaces.Text(int(d["max_length"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed space description {d!r}: {exc}") from exc
    raise ValueError(f"unknown space type {d.get('type')!r}")
