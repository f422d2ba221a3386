"""Checkpoint files: atomic writes, safe loads (no pickled code), clear errors naming the file.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts written with ``torch.save``
and read back with ``torch.load(weights_only=True)``, so loading a file from elsewhere cannot run
code. Every checkpoint carries a ``format`` tag checked on load.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match what is loading it."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file + rename): a kill mid-write leaves the
    previous file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, expected_format: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint. Raises :class:`CheckpointError` naming ``path`` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt zip, truncated file, disallowed pickled object, ...
        raise CheckpointError(f"checkpoint {path} is corrupt or not a checkpoint of this library: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"checkpoint {path} has format {found!r}, expected {expected_format!r}")
    return payload


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint in ``directory`` with the most timesteps (``ckpt_<steps>.pt``), or None."""
    directory = Path(directory)
    best: tuple[int, Path] | None = None
    for p in directory.glob("ckpt_*.pt"):
        try:
            steps = int(p.stem.split("_", 1)[1])
        except ValueError:
            continue
        if best is None or steps > best[0]:
            best = (steps, p)
    return None if best is None else best[1]
