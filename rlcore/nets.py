"""Observation encoders shared by policies and reward modules.

* :class:`FlattenObs`: Box -> flattened float, Discrete -> one-hot, MiniGrid dict -> flattened image.
* :class:`MiniGridEncoder`: MiniGrid's symbolic ``image: uint8[N, 7, 7, 3]`` (object, colour, state per
  cell) -> channel embeddings -> three 2x2 convolutions -> linear, with the agent's ``direction``
  appended as a one-hot.
* :func:`make_encoder`: picks one for an observation space, with a clear error for spaces it cannot embed.
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import nn

from rlcore.tensors import Obs

# Sizes of Farama MiniGrid's symbolic vocabularies (object types, colours, door states).
MINIGRID_NUM_OBJECTS = 11
MINIGRID_NUM_COLORS = 6
MINIGRID_NUM_STATES = 3

def is_minigrid_space(space: gym.Space) -> bool:
    """True for MiniGrid-style observations: a Dict with a uint8 ``image`` of shape (7, 7, 3)-like."""
    if not isinstance(space, gym.spaces.Dict) or "image" not in space.spaces:
        return False
    image = space.spaces["image"]
    return isinstance(image, gym.spaces.Box) and len(image.shape) == 3 and image.shape[-1] == 3


def flat_obs_dim(space: gym.Space) -> int:
    """Length of the flattened float vector the ``"mlp"`` encoder builds from ``space``."""
    if is_minigrid_space(space):
        return int(math.prod(space.spaces["image"].shape))
    if isinstance(space, gym.spaces.Box):
        return int(math.prod(space.shape))
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    raise ValueError(
        f"policy encoder 'mlp' cannot handle observation space {space}; "
        "it supports Box, Discrete and MiniGrid dict observations"
    )


class FlattenObs(nn.Module):
    """Obs -> float32[N, D]: flattens a Box, one-hot encodes a Discrete, flattens a MiniGrid image."""

    def __init__(self, space: gym.Space) -> None:
        super().__init__()
        self.minigrid = is_minigrid_space(space)
        self.discrete_n = int(space.n) if isinstance(space, gym.spaces.Discrete) else 0
        self.out_dim = flat_obs_dim(space)

    def forward(self, obs: Obs) -> torch.Tensor:
        x = obs["image"] if self.minigrid else obs
        if self.discrete_n:
            return nn.functional.one_hot(x.long(), self.discrete_n).float()
        return x.reshape(x.shape[0], -1).float()


class MiniGridEncoder(nn.Module):
    """MiniGrid symbolic obs -> float32[N, out_dim] via channel embeddings, a 2x2 CNN and direction."""

    def __init__(self, space: gym.Space, embed_dim: int = 8, out_dim: int = 64) -> None:
        super().__init__()
        if not is_minigrid_space(space):
            raise ValueError(f"policy encoder 'minigrid' needs a MiniGrid dict observation with 'image', got {space}")
        h, w, _ = space.spaces["image"].shape
        self.object_embed = nn.Embedding(MINIGRID_NUM_OBJECTS + 1, embed_dim)
        self.color_embed = nn.Embedding(MINIGRID_NUM_COLORS + 1, embed_dim)
        self.state_embed = nn.Embedding(MINIGRID_NUM_STATES + 1, embed_dim)
        self.use_direction = "direction" in space.spaces
        self.cnn = nn.Sequential(
            nn.Conv2d(embed_dim, 16, 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 2), nn.ReLU(),
            nn.Conv2d(32, 64, 2), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            cnn_out = self.cnn(torch.zeros(1, embed_dim, h, w)).shape[1]
        self.proj = nn.Sequential(nn.Linear(cnn_out + (4 if self.use_direction else 0), out_dim), nn.ReLU())
        self.out_dim = out_dim

    def forward(self, obs: Obs) -> torch.Tensor:
        image = obs["image"].long()
        # Clamp keeps out-of-vocabulary codes from indexing past the tables (last row = unknown).
        x = (
            self.object_embed(image[..., 0].clamp(0, MINIGRID_NUM_OBJECTS))
            + self.color_embed(image[..., 1].clamp(0, MINIGRID_NUM_COLORS))
            + self.state_embed(image[..., 2].clamp(0, MINIGRID_NUM_STATES))
        )  # [N, H, W, E]
        features = self.cnn(x.permute(0, 3, 1, 2))
        if self.use_direction:
            direction = nn.functional.one_hot(obs["direction"].long().reshape(-1) % 4, 4).float()
            features = torch.cat([features, direction], dim=1)
        return self.proj(features)




def make_encoder(space: gym.Space, kind: str = "auto", owner: str = "encoder", out_dim: int = 64) -> nn.Module:
    """An encoder for ``space`` with an ``out_dim`` attribute: ``kind`` is ``auto``, ``mlp`` (flatten) or
    ``minigrid``. ``owner`` names the caller in errors (e.g. ``"reward module 'rnd'"``)."""
    if kind == "auto":
        kind = "minigrid" if is_minigrid_space(space) else "mlp"
    try:
        if kind == "minigrid":
            return MiniGridEncoder(space, out_dim=out_dim)
        if kind == "mlp":
            return FlattenObs(space)
    except ValueError as exc:
        raise ValueError(f"{owner} cannot embed observation space {space}: {exc}") from exc
    raise ValueError(f"{owner}: encoder kind must be 'auto', 'mlp' or 'minigrid', got {kind!r}")
