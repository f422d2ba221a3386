"""stable-baselines3 feature extractors built on the library's encoders, so SB3 policies can use
the same symbolic-grid network as native PPO (fair comparisons, and SB3's NatureCNN does not fit a
7x7 view). For example, with the batched MiniGrid:

    from stable_baselines3 import PPO
    from rlcore.adapters.sb3 import SB3VecEnv
    from rlcore.adapters.sb3_policies import grid_policy_kwargs

    model = PPO("MultiInputPolicy", SB3VecEnv(mg.make("MiniGrid-DoorKey-8x8-v0", 64)),
                policy_kwargs=grid_policy_kwargs())

The grid vocabulary comes from the :class:`~rlcore.spec.SymbolicGrid` the env attached to its
observation space (SB3's deep copies keep it), or from ``vocab=``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from rlcore.nets import GRID_KINDS, GridEncoder
from rlcore.spec import describe_grid_obs, grid_of


class GridFeaturesExtractor(BaseFeaturesExtractor):
    """SB3 extractor: symbolic-grid dict obs -> :class:`rlcore.nets.GridEncoder` features.

    SB3 hands images channel-first when it wrapped the env in ``VecTransposeImage``; the extractor
    accepts both ``[B, h, w, 3]`` and ``[B, 3, h, w]`` and restores the symbolic codes (SB3 passes
    them as floats; with ``normalize_images=False`` they are the raw integers). ``vocab``: as
    :class:`~rlcore.nets.GridEncoder` (default: the vocabulary attached to ``observation_space``).
    """

    def __init__(self, observation_space: gym.spaces.Dict, features_dim: int = 64,
                 vocab: Sequence[int] | None = None) -> None:
        super().__init__(observation_space, features_dim)
        image = observation_space.spaces["image"]
        shape = tuple(image.shape)
        self.channels_first = shape[0] == 3 and shape[-1] != 3
        hwc = (shape[1], shape[2], shape[0]) if self.channels_first else shape
        native_space = gym.spaces.Dict({**observation_space.spaces,
                                        "image": gym.spaces.Box(0, 255, hwc, dtype=image.dtype)})
        grid = grid_of(observation_space)
        if grid is not None:
            describe_grid_obs(native_space, grid)
        self.encoder = GridEncoder(native_space, out_dim=features_dim, vocab=vocab)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        image = observations["image"]
        if self.channels_first:
            image = image.permute(0, 2, 3, 1)
        obs = {"image": image.round().long()}
        if "direction" in observations:
            # SB3 one-hot encodes Discrete observations ([B, 4], or [B, 1, 4] from its rollout buffer).
            direction = observations["direction"].reshape(image.shape[0], -1)
            obs["direction"] = direction.argmax(-1) if direction.shape[1] > 1 else direction[:, 0].long()
        return self.encoder(obs)


class GridFlattenExtractor(BaseFeaturesExtractor):
    """SB3 extractor: the symbolic ``image`` flattened to float32[B, h*w*3] (raw codes), as
    native PPO's ``encoder="mlp"`` (:class:`rlcore.nets.FlattenObs`) sees it; ``direction`` is unused."""

    def __init__(self, observation_space: gym.spaces.Dict) -> None:
        shape = tuple(observation_space.spaces["image"].shape)
        super().__init__(observation_space, int(torch.tensor(shape).prod()))
        self.channels_first = shape[0] == 3 and shape[-1] != 3

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        image = observations["image"]
        if self.channels_first:
            image = image.permute(0, 2, 3, 1)
        return image.reshape(image.shape[0], -1).float()


def grid_policy_kwargs(features_dim: int = 64, hidden: int = 64, encoder: str = "grid",
                       vocab: Sequence[int] | None = None) -> dict[str, Any]:
    """``policy_kwargs`` for SB3's ``MultiInputPolicy`` matching native PPO's symbolic-grid network.

    ``encoder="grid"`` (or another name in :data:`rlcore.nets.GRID_KINDS`): the embedding CNN shared by
    actor and critic (native PPO's grid encoder), with ``vocab`` as :class:`GridFeaturesExtractor`;
    ``encoder="mlp"``: the flattened image into separate actor and critic MLPs (native ``encoder=mlp``).
    """
    if encoder == "mlp":
        return {
            "features_extractor_class": GridFlattenExtractor,
            "normalize_images": False,
            "net_arch": {"pi": [hidden, hidden], "vf": [hidden, hidden]},
            "activation_fn": torch.nn.Tanh,
            "share_features_extractor": True,
        }
    if encoder not in GRID_KINDS:
        raise ValueError(f"grid_policy_kwargs: encoder must be one of {(*GRID_KINDS, 'mlp')}, got {encoder!r}")
    extractor_kwargs: dict[str, Any] = {"features_dim": features_dim}
    if vocab is not None:
        extractor_kwargs["vocab"] = tuple(int(v) for v in vocab)
    return {
        "features_extractor_class": GridFeaturesExtractor,
        "features_extractor_kwargs": extractor_kwargs,
        "normalize_images": False,
        "net_arch": {"pi": [hidden, hidden], "vf": [hidden, hidden]},
        "activation_fn": torch.nn.Tanh,
        "share_features_extractor": True,
    }

