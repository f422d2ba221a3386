"""Batched MiniGrid on torch: Farama MiniGrid tasks stepped as tensor ops, many envs at once.

    >>> import torch, envs.minigrid as mg
    >>> env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=64, seed=0)
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(torch.randint(0, 7, (64,)))

See ``docs/minigrid.md`` for conventions, observation options and the list of supported ids;
``envs.minigrid.render`` writes frames to GIFs.
"""

from __future__ import annotations

import torch

from .core import BatchedMiniGrid
from .tasks import TaskSpec, get_spec, supported_ids

SUPPORTED_IDS: tuple[str, ...] = supported_ids()


def make(env_id: str, num_envs: int, device: str | torch.device = "cpu", seed: int | None = None,
         **kwargs) -> BatchedMiniGrid:
    """Create ``num_envs`` batched copies of the Farama MiniGrid task ``env_id`` on ``device``.

    Raises ``ValueError`` (listing :data:`SUPPORTED_IDS`) for an unknown id. Extra keyword arguments
    go to :class:`BatchedMiniGrid` (e.g. ``validate_actions``, ``reset_mode``, ``obs_mode="full"`` for
    Farama ``FullyObsWrapper``-style whole-grid images, ``layout="fixed"`` with ``layout_seed`` for
    the task's singleton version); from a config they are ``env.options``.
    """
    return BatchedMiniGrid(get_spec(env_id), num_envs, device=device, seed=seed, **kwargs)


#: the class whose keyword arguments ``make`` passes on (``rlcore.make_env`` checks ``env.options`` against it)
make.env_class = BatchedMiniGrid


__all__ = ["BatchedMiniGrid", "SUPPORTED_IDS", "TaskSpec", "make"]
