"""Minari round trip: write any dataset as a local Minari dataset and read Minari datasets back.

Minari (Farama's offline-RL dataset format) stores episodes, each with ``T + 1`` observations and ``T``
actions, rewards, terminations and truncations, under ``MINARI_DATASETS_PATH`` (default
``~/.minari/datasets``) as ``<root>/<dataset_id>/data/``. Nothing here downloads anything.

* :func:`save_minari` writes with ``jpeg_encoding=False`` (Minari's default JPEG-encodes image
  observations, which is lossy) and the HDF5 backend. The write is atomic: the dataset is built in a
  temporary directory beside its destination and renamed into place, so a failed write leaves nothing
  behind, and an existing dataset is only replaced with ``overwrite=True``. Besides Minari's fields it
  stores the library's metadata (spaces with the symbolic-grid vocabulary, ``source``, score
  references, ...) as JSON under the Minari metadata key ``rlreward_metadata``, the score references
  as Minari's ``ref_min_score``/``ref_max_score``, and, in each episode's ``infos`` (``T + 1`` rows,
  row ``t + 1`` for step ``t`` as Minari records step infos), the privileged ``state``, the behaviour
  ``log_prob`` and ``success``. A dataset written here reads back equal field by field.
* :func:`load_minari` reads any local Minari dataset (the library's or one a user brings) into a
  :class:`~rlcore.data.TrajectoryDataset`. Episodes end where Minari's episodes end; one whose last
  step is neither terminated nor truncated is stored as truncated. MiniGrid missions stored as text
  (Farama's ``MissionSpace`` serialised as ``Text``) become the batched env's mission index when the
  task's mission strings are given (``missions=env.missions``); otherwise the error says so.

The observation must be a flat tensor or a dict of tensors, as in the library's datasets. Bad or
corrupt input raises :class:`~rlcore.data.DatasetError` naming the dataset and, where it applies, the
field.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import gymnasium as gym
import numpy as np
import torch

from rlcore.data.dataset import DatasetError, TrajectoryDataset
from rlcore.data.mix import REF_EXPERT, REF_RANDOM
from rlcore.spaces import space_from_dict, space_to_dict
from rlcore.tensors import Obs, obs_cat, obs_index

METADATA_KEY = "rlreward_metadata"


def minari_root(root: Optional[str | os.PathLike] = None) -> Path:
    """The local Minari datasets directory: ``root``, else ``$MINARI_DATASETS_PATH``, else
    ``~/.minari/datasets`` (Minari's own rule)."""
    if root is not None:
        return Path(root)
    env = os.environ.get("MINARI_DATASETS_PATH")
    return Path(env) if env else Path.home() / ".minari" / "datasets"


def _check_id(dataset_id: str) -> None:
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except Exception as exc:  # minari raises ValueError or its own errors for malformed ids
        raise ValueError(f"minari dataset_id {dataset_id!r} is malformed ((namespace/)(env/)name-v<N>): {exc}") from exc


def _inferred_space(x: torch.Tensor, discrete: bool) -> gym.Space:
    if discrete:
        return gym.spaces.Discrete(int(x.max()) + 1 if x.numel() else 1)
    dtype = np.dtype(str(x.dtype).replace("torch.", ""))
    return gym.spaces.Box(-np.inf, np.inf, tuple(x.shape[1:]), dtype=dtype)


def _spaces(ds: TrajectoryDataset) -> tuple[gym.Space, gym.Space]:
    meta = ds.metadata
    if meta.get("observation_space") is not None:
        obs_space = space_from_dict(meta["observation_space"])
    elif isinstance(ds.obs, dict):
        obs_space = gym.spaces.Dict({k: _inferred_space(v, False) for k, v in ds.obs.items()})
    else:
        obs_space = _inferred_space(ds.obs, False)
    if meta.get("action_space") is not None:
        act_space = space_from_dict(meta["action_space"])
    else:
        act_space = _inferred_space(ds.action, not ds.action.is_floating_point())
    return obs_space, act_space


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


def _episode_obs(obs: Obs, next_obs: Obs, a: int, b: int) -> Any:
    if isinstance(obs, dict):
        return {k: np.concatenate([_np(obs[k][a:b]), _np(next_obs[k][b - 1:b])]) for k in obs}
    return np.concatenate([_np(obs[a:b]), _np(next_obs[b - 1:b])])


def _check_chained(ds: TrajectoryDataset) -> None:
    """Minari keeps ``T + 1`` observations per episode, so ``next_obs[t]`` must equal ``obs[t + 1]``
    inside every episode for the write to be lossless."""
    inner = (~ds.done[:-1]).nonzero().squeeze(1)
    pairs = [(ds.obs[k], ds.next_obs[k], k) for k in ds.obs] if isinstance(ds.obs, dict) else [(ds.obs, ds.next_obs, None)]
    for o, n, key in pairs:
        if not torch.equal(n[inner], o[inner + 1]):
            name = "next_obs" if key is None else f"next_obs/{key}"
            raise DatasetError(f"save_minari: field '{name}' differs from the next row's observation inside an episode; "
                               f"Minari stores T + 1 observations per episode and could not keep it")


def save_minari(ds: TrajectoryDataset, dataset_id: str, *, root: Optional[str | os.PathLike] = None,
                overwrite: bool = False, author: Optional[str] = None, algorithm_name: Optional[str] = None,
                description: Optional[str] = None) -> Path:
    """Write ``ds`` as the local Minari dataset ``dataset_id`` (e.g. ``"rlreward/doorkey5x5/random-v0"``)
    under :func:`minari_root`; returns the dataset's directory. See the module docstring."""
    from minari import __version__ as minari_version
    from minari.data_collector.episode_buffer import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    _check_id(dataset_id)
    if len(ds) == 0:
        raise DatasetError(f"save_minari({dataset_id!r}): the dataset holds no transitions")
    try:
        json.dumps(ds.metadata)
    except TypeError as exc:
        raise DatasetError(f"save_minari({dataset_id!r}): metadata is not JSON-able: {exc}") from exc
    _check_chained(ds)
    obs_space, act_space = _spaces(ds)
    dest = minari_root(root) / dataset_id
    if dest.exists() and not overwrite:
        raise FileExistsError(f"minari dataset {dataset_id!r} already exists at {dest}; pass overwrite=True to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    offsets = ds.episode_offsets().tolist()
    success = None if ds.episode_success is None else _np(ds.episode_success)
    cut = None if ds.episode_cut is None else _np(ds.episode_cut)
    buffers = []
    for e in range(ds.num_episodes):
        a, b = offsets[e], offsets[e + 1]
        infos: dict[str, Any] = {}
        if ds.state is not None and ds.next_state is not None:
            infos["state"] = _episode_obs(ds.state, ds.next_state, a, b)
        if ds.log_prob is not None:
            infos["log_prob"] = np.concatenate([[np.nan], _np(ds.log_prob[a:b])]).astype(np.float32)
        if success is not None:
            flags = np.zeros(b - a + 1, dtype=bool)
            flags[-1] = bool(success[e])
            infos["success"] = flags
        if cut is not None:
            flags = np.zeros(b - a + 1, dtype=bool)
            flags[-1] = bool(cut[e])
            infos["cut"] = flags
        buffers.append(EpisodeBuffer(id=e, observations=_episode_obs(ds.obs, ds.next_obs, a, b), actions=_np(ds.action[a:b]),
                                     rewards=_np(ds.reward[a:b]), terminations=_np(ds.terminated[a:b]),
                                     truncations=_np(ds.truncated[a:b]), infos=infos))
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        storage = MinariStorage.new(tmp / "data", observation_space=obs_space, action_space=act_space,
                                    data_format="hdf5", jpeg_encoding=False)
        meta: dict[str, Any] = {"dataset_id": dataset_id, "minari_version": minari_version,
                                METADATA_KEY: json.dumps(ds.metadata)}
        if author:
            meta["author"] = {author}
        if algorithm_name or ds.metadata.get("source"):
            meta["algorithm_name"] = str(algorithm_name or ds.metadata.get("source"))
        if description:
            meta["description"] = description
        if ds.metadata.get(REF_RANDOM) is not None and ds.metadata.get(REF_EXPERT) is not None:
            meta["ref_min_score"] = float(ds.metadata[REF_RANDOM])
            meta["ref_max_score"] = float(ds.metadata[REF_EXPERT])
        storage.update_metadata(meta)
        storage.update_episodes(buffers)
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _to_tensor(x: Any, name: str, source: str) -> torch.Tensor:
    arr = np.asarray(x)
    if arr.dtype.kind in "OUS":
        raise DatasetError(f"{source}: field '{name}' holds strings or objects ({arr.dtype}); only numeric "
                           f"observations are supported (for MiniGrid missions pass missions=env.missions)")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _mission_index(values: Any, missions: Sequence[str], source: str) -> np.ndarray:
    index = {m: i for i, m in enumerate(missions)}
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        text = v.decode() if isinstance(v, bytes) else str(v)
        if text not in index:
            raise DatasetError(f"{source}: field 'observations/mission' holds {text!r}, which is not one of the "
                               f"task's missions {list(missions)[:5]}{' ...' if len(missions) > 5 else ''}")
        out[i] = index[text]
    return out


def _obs_rows(obs: Any, source: str, missions: Optional[Sequence[str]], name: str = "observations") -> Obs:
    if isinstance(obs, dict):
        out = {}
        for k, v in obs.items():
            if k == "mission" and np.asarray(v).dtype.kind in "OUS":
                if missions is None:
                    raise DatasetError(f"{source}: field '{name}/mission' holds text missions; pass missions=env.missions "
                                       f"(the task's mission strings) to map them to the batched env's mission index")
                out[k] = torch.from_numpy(_mission_index(v, missions, source))
            else:
                out[k] = _to_tensor(v, f"{name}/{k}", source)
        return out
    if isinstance(obs, (tuple, list)) and not isinstance(obs, np.ndarray):
        raise DatasetError(f"{source}: field '{name}' is a tuple observation; only tensors and dicts of tensors are supported")
    return _to_tensor(obs, name, source)


def load_minari(dataset_id: str, *, root: Optional[str | os.PathLike] = None, device: torch.device | str = "cpu",
                missions: Optional[Sequence[str]] = None) -> TrajectoryDataset:
    """Read the local Minari dataset ``dataset_id`` (see the module docstring)."""
    from minari import MinariDataset

    path = minari_root(root) / dataset_id
    source = f"minari dataset {dataset_id!r} ({path})"
    if not (path / "data").is_dir():
        raise FileNotFoundError(f"{source}: not found (no data directory); nothing is downloaded")
    try:
        mds = MinariDataset(path / "data")
        episodes = list(mds.iterate_episodes())
        raw_meta = mds.storage.metadata
    except DatasetError:
        raise
    except Exception as exc:  # h5py, json and minari raise many kinds for a damaged file
        raise DatasetError(f"{source}: cannot be read: {type(exc).__name__}: {exc}") from exc
    if not episodes:
        raise DatasetError(f"{source}: holds no episodes")
    obs_parts, next_parts, actions, rewards, terms, truncs = [], [], [], [], [], []
    state_parts, next_state_parts, log_probs, success, cut = [], [], [], [], []
    has_state = has_log_prob = has_success = True
    for ep in episodes:
        T = len(ep.rewards)
        if T == 0:
            continue
        o = _obs_rows(ep.observations, source, missions)
        lead = next(iter(o.values())).shape[0] if isinstance(o, dict) else o.shape[0]
        if lead != T + 1:
            raise DatasetError(f"{source}: episode {ep.id} has {lead} observations for {T} steps (Minari stores T + 1)")
        obs_parts.append(obs_index(o, slice(0, T)))
        next_parts.append(obs_index(o, slice(1, T + 1)))
        actions.append(_to_tensor(ep.actions, "actions", source))
        rewards.append(_to_tensor(ep.rewards, "rewards", source).float())
        term = _to_tensor(ep.terminations, "terminations", source).bool().clone()
        trunc = _to_tensor(ep.truncations, "truncations", source).bool().clone() & ~term
        infos = ep.infos or {}
        # an episode whose last step is neither terminated nor truncated was cut by the recording
        cut.append(bool(np.asarray(infos["cut"])[-1]) if "cut" in infos else not bool(term[-1] | trunc[-1]))
        trunc[-1] |= ~term[-1]  # the episode ends here whatever its flags say
        if bool((term[:-1] | trunc[:-1]).any()):
            raise DatasetError(f"{source}: episode {ep.id} is terminated or truncated before its last step")
        terms.append(term)
        truncs.append(trunc)
        if isinstance(infos.get("state"), dict):
            st = _obs_rows(infos["state"], source, None, "infos/state")
            state_parts.append(obs_index(st, slice(0, T)))
            next_state_parts.append(obs_index(st, slice(1, T + 1)))
        else:
            has_state = False
        if "log_prob" in infos:
            log_probs.append(_to_tensor(infos["log_prob"], "infos/log_prob", source)[1:].float())
        else:
            has_log_prob = False
        if "success" in infos:
            success.append(bool(np.asarray(infos["success"])[-1]))
        else:
            has_success = False
    if not obs_parts:
        raise DatasetError(f"{source}: holds no steps")
    meta: dict[str, Any] = {}
    if raw_meta.get(METADATA_KEY):
        try:
            meta = json.loads(raw_meta[METADATA_KEY])
        except (TypeError, ValueError) as exc:
            raise DatasetError(f"{source}: metadata '{METADATA_KEY}' is not valid JSON: {exc}") from exc
    else:
        meta = {"source": f"minari:{dataset_id}"}
        for key, space in (("observation_space", mds.observation_space), ("action_space", mds.action_space)):
            try:
                if key == "observation_space" and missions is not None and isinstance(space, gym.spaces.Dict) \
                        and "mission" in space.spaces:
                    space = gym.spaces.Dict({**space.spaces, "mission": gym.spaces.Discrete(len(missions))})
                meta[key] = space_to_dict(space)
            except TypeError:
                pass  # a space the library cannot describe: the dataset still loads, without it
        if raw_meta.get("ref_min_score") is not None and raw_meta.get("ref_max_score") is not None:
            meta[REF_RANDOM], meta[REF_EXPERT] = float(raw_meta["ref_min_score"]), float(raw_meta["ref_max_score"])
    action = torch.cat(actions)
    ds = TrajectoryDataset.from_arrays(observations=obs_cat(obs_parts), actions=action, rewards=torch.cat(rewards),
                                       terminals=torch.cat(terms), timeouts=torch.cat(truncs),
                                       next_observations=obs_cat(next_parts), device=device, metadata=meta, source=source)
    if has_state and state_parts:
        ds.state = {k: v.to(device) for k, v in obs_cat(state_parts).items()}
        ds.next_state = {k: v.to(device) for k, v in obs_cat(next_state_parts).items()}
    if has_log_prob and log_probs:
        ds.log_prob = torch.cat(log_probs).to(device)
    if has_success and success:
        ds.episode_success = torch.tensor(success, dtype=torch.bool, device=device)
    ds.episode_cut = torch.tensor(cut, dtype=torch.bool, device=device)
    ds.validate(source=source)
    return ds
