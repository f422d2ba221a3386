"""Save and load datasets safely: safetensors for the tensors, JSON for the metadata, no pickled code.

A dataset file (``*.safetensors``) holds one tensor per field (``obs`` or ``obs/<key>`` for dict
observations, ``state/<key>`` for privileged state, ...) and, in the safetensors header, a JSON
document::

    {"format": "rlreward.dataset/1", "obs_keys": null | [..], "state_keys": null | [..],
     "metadata": {...}}

Writes are atomic (temporary file, then rename). Loading a file from elsewhere validates every field
(:meth:`TrajectoryDataset.validate`) and its spaces against ``metadata``; problems raise
:class:`~rlcore.data.dataset.DatasetError` naming the file and the field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import gymnasium as gym
import torch

from rlcore.atomic import atomic_write
from rlcore.data.dataset import EPISODE_FIELDS, OPTIONAL_FIELDS, TRANSITION_FIELDS, DatasetError, TrajectoryDataset
from rlcore.spaces import space_from_dict, space_to_dict

DATASET_FORMAT = "rlreward.dataset/1"
_HEADER_KEY = "rlreward"


def _flat_tensors(ds: TrajectoryDataset) -> tuple[dict[str, torch.Tensor], dict[str, Optional[list[str]]]]:
    tensors: dict[str, torch.Tensor] = {}
    keys: dict[str, Optional[list[str]]] = {}
    for name in TRANSITION_FIELDS + EPISODE_FIELDS:
        value = getattr(ds, name)
        if value is None:
            continue
        if isinstance(value, dict):
            keys[name] = sorted(value)
            for k, v in value.items():
                tensors[f"{name}/{k}"] = v.detach().cpu().contiguous()
        else:
            keys[name] = None
            tensors[name] = value.detach().cpu().contiguous()
    return tensors, keys


def save_dataset(ds: TrajectoryDataset, path: str | os.PathLike) -> Path:
    """Write ``ds`` to ``path`` (atomic); returns the path. The metadata must be JSON-able."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors, keys = _flat_tensors(ds)
    try:
        header = json.dumps({"format": DATASET_FORMAT, "fields": keys, "metadata": ds.metadata})
    except TypeError as exc:
        raise DatasetError(f"{path}: metadata is not JSON-able: {exc}") from exc
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={_HEADER_KEY: header}))


def load_dataset(path: str | os.PathLike, device: str | torch.device = "cpu") -> TrajectoryDataset:
    """Load and validate a dataset written by :func:`save_dataset` (or by anyone else: nothing in
    the file is executed). Raises :class:`DatasetError` naming ``path`` and the bad field."""
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            raw_header = (f.metadata() or {}).get(_HEADER_KEY)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise DatasetError(f"dataset {path} is not a safetensors file: {exc}") from exc
    if raw_header is None:
        raise DatasetError(f"dataset {path} has no '{_HEADER_KEY}' header: not a dataset of this library")
    try:
        header = json.loads(raw_header)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"dataset {path}: header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != DATASET_FORMAT:
        found = header.get("format") if isinstance(header, dict) else type(header).__name__
        raise DatasetError(f"dataset {path} has format {found!r}, expected {DATASET_FORMAT!r}")
    layout, metadata = header.get("fields"), header.get("metadata", {})
    if not isinstance(layout, dict) or not isinstance(metadata, dict):
        raise DatasetError(f"dataset {path}: header fields/metadata must be JSON objects")
    values: dict[str, Any] = {}
    used: set[str] = set()
    for name in TRANSITION_FIELDS + EPISODE_FIELDS:
        if name not in layout:
            if name in OPTIONAL_FIELDS:
                values[name] = None
                continue
            raise DatasetError(f"dataset {path}: field '{name}' is missing")
        sub = layout[name]
        if sub is None:
            if name not in tensors:
                raise DatasetError(f"dataset {path}: field '{name}' is missing")
            values[name] = tensors[name]
            used.add(name)
        else:
            if not isinstance(sub, list) or not all(isinstance(k, str) for k in sub):
                raise DatasetError(f"dataset {path}: field '{name}' has a malformed key list")
            missing = [k for k in sub if f"{name}/{k}" not in tensors]
            if missing:
                raise DatasetError(f"dataset {path}: field '{name}/{missing[0]}' is missing")
            values[name] = {k: tensors[f"{name}/{k}"] for k in sub}
            used.update(f"{name}/{k}" for k in sub)
    extra = sorted(set(tensors) - used)
    if extra:
        raise DatasetError(f"dataset {path}: unknown field '{extra[0]}'")
    ds = TrajectoryDataset(**values, metadata=metadata)
    ds.validate(source=f"dataset {path}")
    _check_spaces_metadata(ds, f"dataset {path}")
    return ds.to(device)


def _check_spaces_metadata(ds: TrajectoryDataset, source: str) -> None:
    for key, field_name in (("observation_space", "obs"), ("action_space", "action")):
        if key not in ds.metadata:
            continue
        try:
            space = space_from_dict(ds.metadata[key])
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{source}: metadata '{key}' is malformed: {exc}") from exc
        check_against_space(ds, field_name, space, source)


def check_against_space(ds: TrajectoryDataset, field_name: str, space: gym.Space, source: str) -> None:
    """Check ``ds.obs``/``ds.next_obs`` (``field_name="obs"``) or ``ds.action`` against ``space``."""
    def one(name: str, x: torch.Tensor, s: gym.Space) -> None:
        if isinstance(s, gym.spaces.Discrete):
            if x.dim() != 1 or x.dtype.is_floating_point:
                raise DatasetError(f"{source}: field '{name}' must be integer [M] for {s}, got {x.dtype}{tuple(x.shape)}")
            if x.numel() and (int(x.min()) < int(s.start) or int(x.max()) >= int(s.start) + int(s.n)):
                raise DatasetError(f"{source}: field '{name}' has values outside {s}")
        elif isinstance(s, (gym.spaces.Box, gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
            if tuple(x.shape[1:]) != tuple(s.shape):
                raise DatasetError(f"{source}: field '{name}' has per-transition shape {tuple(x.shape[1:])}, "
                                   f"the space {s} has {tuple(s.shape)}")

    if field_name == "action":
        one("action", ds.action, space)
        return
    for name in ("obs", "next_obs"):
        value = getattr(ds, name)
        if isinstance(space, gym.spaces.Dict):
            if not isinstance(value, dict) or set(value) != set(space.spaces):
                got = sorted(value) if isinstance(value, dict) else "a tensor"
                raise DatasetError(f"{source}: field '{name}' has keys {got}, the space has {sorted(space.spaces)}")
            for k, s in space.spaces.items():
                one(f"{name}/{k}", value[k], s)
        else:
            if isinstance(value, dict):
                raise DatasetError(f"{source}: field '{name}' is a dict, the space is {space}")
            one(name, value, space)


def check_dataset_spaces(ds: TrajectoryDataset, observation_space: gym.Space, action_space: gym.Space,
                         source: str = "dataset") -> None:
    """Raise :class:`DatasetError` if ``ds`` does not fit an env with these spaces (the metadata's
    spaces, when present, must equal them; the tensors must fit them)."""
    for key, space in (("observation_space", observation_space), ("action_space", action_space)):
        saved = ds.metadata.get(key)
        if saved is not None and saved != space_to_dict(space):
            raise DatasetError(f"{source}: metadata '{key}' {saved} does not match the env's {space_to_dict(space)}")
    check_against_space(ds, "obs", observation_space, source)
    check_against_space(ds, "action", action_space, source)
