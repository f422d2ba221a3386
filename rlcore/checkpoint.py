"""Checkpoint files: atomic writes, safe loads (no pickled code), clear errors naming the file.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts written with ``torch.save``
and read back with ``torch.load(weights_only=True)``, so loading a file from elsewhere cannot run
code. Every checkpoint carries a ``format`` tag and a ``checksum`` (SHA-256 over every tensor's
dtype, shape and bytes and every plain value, in key order), both checked on load: a flipped byte in
the weights is refused, naming the file. Writes go to a temporary file renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from rlcore.atomic import atomic_write

CHECKSUM_KEY = "checksum"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match what is loading it."""


def payload_checksum(payload: Any) -> str:
    """SHA-256 hex digest of a checkpoint payload (its ``checksum`` entry excluded)."""
    digest = hashlib.sha256()

    def visit(value: Any, key: str) -> None:
        digest.update(key.encode())
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(value, dict):
            digest.update(b"D")
            for k in sorted(value, key=str):
                if key == "" and k == CHECKSUM_KEY:
                    continue
                visit(value[k], f"{key}/{k}")
        elif isinstance(value, (list, tuple)):
            digest.update(f"L{len(value)}".encode())
            for i, v in enumerate(value):
                visit(v, f"{key}[{i}]")
        else:
            digest.update(json.dumps(value, default=str).encode())

    visit(payload, "")
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus its ``checksum``) to ``path`` atomically (:func:`rlcore.atomic.atomic_write`):
    a kill mid-write leaves the previous file intact, and a failed write leaves no temporary file."""
    stamped = {**payload, CHECKSUM_KEY: payload_checksum(payload)}
    return atomic_write(path, lambda tmp: torch.save(stamped, tmp))


def numbered_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(steps, path)`` of every ``ckpt_<steps>.pt`` in ``directory``, oldest first."""
    found = []
    for p in Path(directory).glob("ckpt_*.pt"):
        try:
            found.append((int(p.stem.split("_", 1)[1]), p))
        except ValueError:
            continue
    return sorted(found)


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
    saved = payload.pop(CHECKSUM_KEY, None)
    if saved is None:
        warnings.warn(f"checkpoint {path} has no checksum (written before checksums were kept); "
                      "its weights cannot be verified", stacklevel=2)
    elif saved != payload_checksum(payload):
        raise CheckpointError(f"checkpoint {path} is corrupt: its contents do not match its checksum")
    return payload


def latest_valid_checkpoint(directory: str | os.PathLike, expected_format: str,
                            map_location: str | torch.device = "cpu",
                            accept: Optional[Callable[[dict[str, Any]], bool]] = None) -> Optional[tuple[Path, dict[str, Any]]]:
    """The newest ``ckpt_<steps>.pt`` in ``directory`` that loads, passes its checksum and ``accept``
    (e.g. all weights finite), with its payload; newer bad ones are skipped with a warning naming
    each. None when there is no valid one."""
    for _, p in reversed(numbered_checkpoints(directory)):
        try:
            payload = load_checkpoint(p, expected_format, map_location)
        except CheckpointError as exc:
            warnings.warn(f"skipping {p}: {exc}", stacklevel=2)
            continue
        if accept is not None and not accept(payload):
            warnings.warn(f"skipping {p}: it does not pass the check (non-finite weights?)", stacklevel=2)
            continue
        return p, payload
    return None


def all_finite(payload: Any) -> bool:
    """Whether every floating-point tensor in a (nested) payload is finite."""
    if isinstance(payload, torch.Tensor):
        return not payload.is_floating_point() or bool(torch.isfinite(payload).all())
    if isinstance(payload, dict):
        return all(all_finite(v) for v in payload.values())
    if isinstance(payload, (list, tuple)):
        return all(all_finite(v) for v in payload)
    return True


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint in ``directory`` with the most timesteps (``ckpt_<steps>.pt``), or None."""
    found = numbered_checkpoints(directory)
    return found[-1][1] if found else None
