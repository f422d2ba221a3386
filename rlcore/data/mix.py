"""Joining datasets, mixing them by trajectory fractions, and D4RL-style normalised scores.

The mixtures of Hong et al. ("Harnessing Mixed Offline RL Datasets via Trajectory Weighting", ICLR
2023), e.g. a random-policy dataset with 5% of its trajectories from an expert::

    mixed = make_mixed([random_data, expert_data], [0.95, 0.05], seed=0)
    mixed.metadata["ref_random_return"], mixed.metadata["ref_expert_return"]   # the score's references

Normalised score (Fu et al. 2020, D4RL): ``100 * (R - R_random) / (R_expert - R_random)``, with the
two references stored in the dataset's metadata (``ref_random_return``, ``ref_expert_return``);
:func:`make_mixed` fills them with the mean episode returns of the first and the last source unless
they are given.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch

from rlcore.data.dataset import EPISODE_FIELDS, OPTIONAL_FIELDS, TRANSITION_FIELDS, DatasetError, TrajectoryDataset
from rlcore.tensors import obs_cat

REF_RANDOM, REF_EXPERT = "ref_random_return", "ref_expert_return"


def _cat(parts: Sequence[Any]) -> Any:
    """:func:`~rlcore.tensors.obs_cat`, after checking that dict parts share their keys."""
    if isinstance(parts[0], dict):
        for p in parts[1:]:
            if set(p) != set(parts[0]):
                raise DatasetError(f"concat_datasets: observation/state keys differ: {sorted(parts[0])} vs {sorted(p)}")
    return obs_cat(list(parts))


def concat_datasets(datasets: Sequence[TrajectoryDataset], metadata: Optional[dict[str, Any]] = None) -> TrajectoryDataset:
    """The episodes of ``datasets`` one after the other, renumbered; on the first one's device. An
    optional field is kept only if every dataset has it. The spaces in the metadata must agree.
    ``metadata`` defaults to the first dataset's."""
    if not datasets:
        raise DatasetError("concat_datasets: no datasets given")
    first = datasets[0]
    for i, ds in enumerate(datasets[1:], start=1):
        for key in ("observation_space", "action_space"):
            a, b = first.metadata.get(key), ds.metadata.get(key)
            if a is not None and b is not None and a != b:
                raise DatasetError(f"concat_datasets: dataset {i} has metadata '{key}' {b}, dataset 0 has {a}")
    device = first.device
    parts = [ds.to(device) for ds in datasets]
    out: dict[str, Any] = {}
    for name in TRANSITION_FIELDS + EPISODE_FIELDS:
        values = [getattr(ds, name) for ds in parts]
        if name in OPTIONAL_FIELDS and any(v is None for v in values):
            out[name] = None
        elif name == "episode_id":
            offsets, n = [], 0
            for ds in parts:
                offsets.append(ds.episode_id + n)
                n += ds.num_episodes
            out[name] = torch.cat(offsets)
        else:
            out[name] = _cat(values)
    return TrajectoryDataset(**out, metadata=dict(first.metadata if metadata is None else metadata))


def make_mixed(datasets: Sequence[TrajectoryDataset], fractions: Sequence[float], *, n_episodes: Optional[int] = None,
               seed: int = 0, ref_random_return: Optional[float] = None,
               ref_expert_return: Optional[float] = None) -> TrajectoryDataset:
    """A mixture whose trajectories come from ``datasets[i]`` in the share ``fractions[i]``.

    Fractions count trajectories (not transitions) and must sum to 1. ``n_episodes`` (the mixture's
    size) defaults to the largest size every source can fill without repeating a trajectory; asking
    for more than a source holds is an error. Each source's trajectories are drawn without
    replacement by a generator seeded with ``seed``; ``round(fraction * n_episodes)`` from each
    (at least one where the fraction is positive), so the total may differ from ``n_episodes`` by
    rounding. The metadata records the sources' ``source`` entries, the fractions and the episode
    counts; the score references default to the mean episode returns of the first source (random)
    and the last one (expert).
    """
    if len(datasets) != len(fractions) or not datasets:
        raise ValueError(f"make_mixed: {len(datasets)} datasets and {len(fractions)} fractions; give one fraction each")
    fr = [float(f) for f in fractions]
    if any(not math.isfinite(f) or f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"make_mixed: fractions must be non-negative and sum to 1, got {list(fractions)}")
    for i, ds in enumerate(datasets):
        if ds.num_episodes == 0 and fr[i] > 0:
            raise DatasetError(f"make_mixed: dataset {i} holds no episodes")
    if n_episodes is None:
        n_episodes = min(int(ds.num_episodes / f) for ds, f in zip(datasets, fr) if f > 0)
    n_episodes = int(n_episodes)
    if n_episodes <= 0:
        raise ValueError(f"make_mixed: n_episodes must be positive, got {n_episodes}")
    counts = [0 if f == 0 else max(1, round(f * n_episodes)) for f in fr]
    gen = torch.Generator().manual_seed(int(seed))
    picked = []
    for i, (ds, k) in enumerate(zip(datasets, counts)):
        if k > ds.num_episodes:
            raise DatasetError(f"make_mixed: dataset {i} holds {ds.num_episodes} episodes, the mixture needs {k} "
                               f"({fr[i]:.4g} of {n_episodes})")
        if k == 0:
            continue
        ids = torch.randperm(ds.num_episodes, generator=gen)[:k].sort().values.to(ds.device)
        picked.append(ds.select_episodes(ids))
    meta = dict(datasets[0].metadata)
    meta["source"] = {"mixture": [ds.metadata.get("source") for ds in datasets], "fractions": fr,
                      "episodes": counts, "seed": int(seed)}
    mean_return = [float(ds.episode_return.double().mean()) for ds in (datasets[0], datasets[-1])]
    meta[REF_RANDOM] = mean_return[0] if ref_random_return is None else float(ref_random_return)
    meta[REF_EXPERT] = mean_return[1] if ref_expert_return is None else float(ref_expert_return)
    return concat_datasets(picked, metadata=meta)


def normalized_score(returns: Any, metadata_or_random: Any, expert: Optional[float] = None) -> float:
    """``100 * (mean(returns) - R_random) / (R_expert - R_random)`` (D4RL). The references come from a
    dataset's metadata (a dict with ``ref_random_return`` and ``ref_expert_return``), or are passed as
    ``(R_random, R_expert)``."""
    if isinstance(metadata_or_random, dict):
        missing = [k for k in (REF_RANDOM, REF_EXPERT) if metadata_or_random.get(k) is None]
        if missing:
            raise DatasetError(f"normalized_score: the dataset's metadata has no {', '.join(missing)}")
        lo, hi = float(metadata_or_random[REF_RANDOM]), float(metadata_or_random[REF_EXPERT])
    else:
        if expert is None:
            raise ValueError("normalized_score: give the dataset's metadata or both reference returns")
        lo, hi = float(metadata_or_random), float(expert)
    if not hi > lo:
        raise DatasetError(f"normalized_score: the expert reference return ({hi}) must exceed the random one ({lo})")
    mean = float(torch.as_tensor(returns, dtype=torch.float64).mean())
    return 100.0 * (mean - lo) / (hi - lo)
