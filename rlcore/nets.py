"""Observation encoders shared by policies and reward modules.

* :class:`FlattenObs`: Box -> flattened float, Discrete -> one-hot, symbolic-grid dict -> flattened image.
* :class:`GridEncoder`: a symbolic grid image ``image: uint8[N, h, w, 3]`` (object, colour, state per
  cell, e.g. MiniGrid's 7x7 view) -> channel embeddings -> three 2x2 convolutions -> linear, with the
  agent's ``direction`` appended as a one-hot. By default (``pool=True``, the policies' encoder) a
  2x2 max-pool follows the first convolution, so a 7x7 view ends as one 1x1 cell: where things are in
  the view is pooled away. ``pool=False`` keeps the 4x4 map of the 7x7 view (the exploration bonuses'
  encoder, ``make_encoder(space, "grid_nopool")``).
* :func:`make_encoder`: picks one for an observation space, with a clear error for spaces it cannot embed.

Vocabulary. :class:`GridEncoder` needs the number of codes of each channel. It reads them from the
:class:`~rlcore.spec.SymbolicGrid` the env attached to its observation space
(:func:`rlcore.spec.describe_grid_obs`, kept through deep copies, pickles and
:mod:`rlcore.spaces` checkpoints), or takes ``vocab=`` from the caller (e.g.
``env.task_info().grid.vocab_sizes``); nothing about a particular env is written here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn

from rlcore.spec import grid_of
from rlcore.tensors import Obs


def is_grid_space(space: gym.Space) -> bool:
    """True for symbolic-grid observations: a Dict whose ``image`` is a Box of shape ``(h, w, 3)``."""
    if not isinstance(space, gym.spaces.Dict) or "image" not in space.spaces:
        return False
    image = space.spaces["image"]
    return isinstance(image, gym.spaces.Box) and len(image.shape) == 3 and image.shape[-1] == 3


def flat_obs_dim(space: gym.Space) -> int:
    """Length of the flattened float vector the ``"mlp"`` encoder builds from ``space``."""
    if is_grid_space(space):
        return int(math.prod(space.spaces["image"].shape))
    if isinstance(space, gym.spaces.Box):
        return int(math.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    raise ValueError(
        f"policy encoder 'mlp' cannot handle observation space {space}; "
        "it supports Box, Discrete and symbolic-grid dict observations (an 'image' of shape (h, w, 3))"
    )


class FlattenObs(nn.Module):
    """Obs -> float32[N, D]: flattens a Box, one-hot encodes a Discrete, flattens a symbolic-grid image."""

    def __init__(self, space: gym.Space) -> None:
        super().__init__()
        self.is_grid = is_grid_space(space)
        self.discrete_n = int(space.n) if isinstance(space, gym.spaces.Discrete) else 0
        self.out_dim = flat_obs_dim(space)

    def forward(self, obs: Obs) -> torch.Tensor:
        x = obs["image"] if self.is_grid else obs
        if self.discrete_n:
            return nn.functional.one_hot(x.long(), self.discrete_n).float()
        return x.reshape(x.shape[0], -1).float()


class GridEncoder(nn.Module):
    """Symbolic-grid obs -> float32[N, out_dim] via channel embeddings, a 2x2 CNN and direction.

    Layout: embeddings of the three channels, summed per cell -> Conv2d(embed_dim, 16, 2) -> ReLU
    [-> MaxPool2d(2) with ``pool``] -> Conv2d(16, 32, 2) -> ReLU -> Conv2d(32, 64, 2) -> ReLU ->
    flatten, ``direction`` one-hot appended -> Linear(out_dim) -> ReLU. On a 7x7 view the pooled CNN
    ends at ``64 x 1 x 1`` (the common MiniGrid PPO baselines' policy network); without the pool it
    ends at ``64 x 4 x 4`` = 1024 values that keep where each thing is in the view (RLeXplore's
    MiniGrid encoder: three 2x2 convolutions, no pooling, then 512 ReLU features).

    Args:
        space: Dict observation space with ``image: uint8[h, w, 3]`` (object, colour, state codes per
            cell) and optionally ``direction`` (a ``Discrete``, appended one-hot).
        vocab: ``(num_objects, num_colors, num_states)``; default: the
            :class:`~rlcore.spec.SymbolicGrid` attached to ``space``. Codes at or above a size share
            one extra "unknown" embedding row.
        embed_dim: width of each cell's embedding (the CNN's input channels).
        out_dim: feature size.
        pool: the 2x2 max-pool after the first convolution (the policies' default). ``False`` keeps
            the spatial map, and so where things are relative to the agent (the bonuses' encoder);
            the linear layer then grows with the image (``64 * (h - 3) * (w - 3)`` inputs).
        use_direction: append the ``direction`` one-hot when the space has it (default). ``False``
            reads the image alone (RLeXplore's bonus networks see the 3x7x7 view without the heading).

    Raises ``ValueError`` when ``space`` is not a symbolic grid or its vocabulary is unknown.
    """

    def __init__(self, space: gym.Space, embed_dim: int = 8, out_dim: int = 64, *,
                 vocab: Sequence[int] | None = None, pool: bool = True, use_direction: bool = True) -> None:
        super().__init__()
        if not is_grid_space(space):
            raise ValueError(f"the grid encoder needs a Dict observation with 'image' of shape (h, w, 3), got {space}")
        if vocab is None:
            grid = grid_of(space)
            if grid is None:
                raise ValueError("the grid encoder needs the vocabulary sizes of the image channels: pass vocab="
                                 "(num_objects, num_colors, num_states) or attach the env's SymbolicGrid to the "
                                 "observation space (rlcore.spec.describe_grid_obs)")
            vocab = grid.vocab_sizes
        if len(vocab) != 3 or min(vocab) < 1:
            raise ValueError(f"vocab must be three positive sizes (objects, colours, states), got {tuple(vocab)}")
        self.vocab = tuple(int(v) for v in vocab)
        num_objects, num_colors, num_states = self.vocab
        h, w, _ = space.spaces["image"].shape
        self.object_embed = nn.Embedding(num_objects + 1, embed_dim)
        self.color_embed = nn.Embedding(num_colors + 1, embed_dim)
        self.state_embed = nn.Embedding(num_states + 1, embed_dim)
        self.use_direction = bool(use_direction) and "direction" in space.spaces
        direction = space.spaces.get("direction")
        self.num_directions = int(direction.n) if isinstance(direction, gym.spaces.Discrete) else 4
        smallest = 7 if pool else 4
        if min(h, w) < smallest:
            raise ValueError(f"the grid encoder (pool={bool(pool)}) needs an image of at least {smallest}x{smallest} "
                             f"cells, got {h}x{w}")
        self.pool = bool(pool)
        self.cnn = nn.Sequential(
            nn.Conv2d(embed_dim, 16, 2), nn.ReLU(), *([nn.MaxPool2d(2)] if self.pool else []),
            nn.Conv2d(16, 32, 2), nn.ReLU(),
            nn.Conv2d(32, 64, 2), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            cnn_out = self.cnn(torch.zeros(1, embed_dim, h, w)).shape[1]
        extra = self.num_directions if self.use_direction else 0
        self.proj = nn.Sequential(nn.Linear(cnn_out + extra, out_dim), nn.ReLU())
        self.out_dim = out_dim

    def forward(self, obs: Obs) -> torch.Tensor:
        image = obs["image"].long()
        num_objects, num_colors, num_states = self.vocab
        # Clamp keeps out-of-vocabulary codes from indexing past the tables (last row = unknown).
        x = (
            self.object_embed(image[..., 0].clamp(0, num_objects))
            + self.color_embed(image[..., 1].clamp(0, num_colors))
            + self.state_embed(image[..., 2].clamp(0, num_states))
        )  # [N, H, W, E]
        features = self.cnn(x.permute(0, 3, 1, 2))
        if self.use_direction:
            direction = obs["direction"].long().reshape(-1) % self.num_directions
            features = torch.cat([features, nn.functional.one_hot(direction, self.num_directions).float()], dim=1)
        return self.proj(features)


#: names of the :class:`GridEncoder` kind: ``"grid"`` and the name the configs use for it
GRID_KINDS = ("grid", "minigrid")
#: the :class:`GridEncoder` without its max-pool (``pool=False``): keeps where things are in the view
GRID_NOPOOL = "grid_nopool"
#: :data:`GRID_NOPOOL` on the image alone, without the heading (``use_direction=False``): RLeXplore's input
GRID_VIEW = "grid_view"
#: ``make_encoder`` kinds
ENCODER_KINDS = ("auto", "mlp", *GRID_KINDS, GRID_NOPOOL, GRID_VIEW)


def make_encoder(space: gym.Space, kind: str = "auto", owner: str = "encoder", out_dim: int = 64,
                 vocab: Sequence[int] | None = None) -> nn.Module:
    """An encoder for ``space`` with an ``out_dim`` attribute.

    ``kind``: ``auto`` (``grid`` for symbolic-grid dicts, else ``mlp``), ``mlp`` (:class:`FlattenObs`),
    ``grid`` (:class:`GridEncoder`, pooled as in the policies; also under its config name, see
    :data:`GRID_KINDS`) or ``grid_nopool`` (:class:`GridEncoder` with ``pool=False``, see
    :data:`GRID_NOPOOL`) or ``grid_view`` (the same without the heading, :data:`GRID_VIEW`).
    ``vocab`` goes to :class:`GridEncoder` (default: the vocabulary attached to
    ``space``). ``owner`` names the caller in errors (e.g. ``"reward module 'rnd'"``).
    """
    if kind == "auto":
        kind = "grid" if is_grid_space(space) else "mlp"
    try:
        if kind in GRID_KINDS or kind in (GRID_NOPOOL, GRID_VIEW):
            return GridEncoder(space, vocab=vocab, out_dim=out_dim, pool=kind in GRID_KINDS,
                               use_direction=kind != GRID_VIEW)
        if kind == "mlp":
            return FlattenObs(space)
    except ValueError as exc:
        raise ValueError(f"{owner} cannot embed observation space {space}: {exc}") from exc
    raise ValueError(f"{owner}: encoder kind must be one of {', '.join(map(repr, ENCODER_KINDS))}, got {kind!r}")
