"""stable-baselines3 feature extractors built on the library's encoders, so SB3 policies can use
the same MiniGrid network as native PPO (fair comparisons, and SB3's NatureCNN does not fit a 7x7 view).

    from stable_baselines3 import PPO
    from rlcore.adapters.sb3 import SB3VecEnv
    from rlcore.adapters.sb3_policies import minigrid_policy_kwargs

    model = PPO("MultiInputPolicy", SB3VecEnv(mg.make("MiniGrid-DoorKey-8x8-v0", 64)),
                policy_kwargs=minigrid_policy_kwargs())
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from rlcore.nets import MiniGridEncoder


class MiniGridFeaturesExtractor(BaseFeaturesExtractor):
    """SB3 extractor: MiniGrid dict obs -> :class:`rlcore.nets.MiniGridEncoder` features.

    SB3 hands images channel-first when it wrapped the env in ``VecTransposeImage``; the extractor
    accepts both ``[B, 7, 7, 3]`` and ``[B, 3, 7, 7]`` and restores the symbolic codes (SB3 passes
    them as floats; with ``normalize_images=False`` they are the raw integers).
    """

    def __init__(self, observation_space: gym.spaces.Dict, features_dim: int = 64) -> None:
        super().__init__(observation_space, features_dim)
        image = observation_space.spaces["image"]
        shape = tuple(image.shape)
        self.channels_first = shape[0] == 3 and shape[-1] != 3
        hwc = (shape[1], shape[2], shape[0]) if self.channels_first else shape
        native_space = gym.spaces.Dict({**observation_space.spaces,
                                        "image": gym.spaces.Box(0, 255, hwc, dtype=image.dtype)})
        self.encoder = MiniGridEncoder(native_space, out_dim=features_dim)

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


class MiniGridFlattenExtractor(BaseFeaturesExtractor):
    """SB3 extractor: the MiniGrid ``image`` flattened to float32[B, 147] (raw symbolic codes), as
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


def minigrid_policy_kwargs(features_dim: int = 64, hidden: int = 64, encoder: str = "minigrid") -> dict[str, Any]:
    """``policy_kwargs`` for SB3's ``MultiInputPolicy`` matching native PPO's MiniGrid network.

    ``encoder="minigrid"``: the embedding CNN shared by actor and critic (native ``encoder=minigrid``);
    ``encoder="mlp"``: the flattened image into separate actor and critic MLPs (native ``encoder=mlp``).
    """
    if encoder == "mlp":
        return {
            "features_extractor_class": MiniGridFlattenExtractor,
            "normalize_images": False,
            "net_arch": {"pi": [hidden, hidden], "vf": [hidden, hidden]},
            "activation_fn": torch.nn.Tanh,
            "share_features_extractor": True,
        }
    if encoder != "minigrid":
        raise ValueError(f"minigrid_policy_kwargs: encoder must be 'minigrid' or 'mlp', got {encoder!r}")
    return {
        "features_extractor_class": MiniGridFeaturesExtractor,
        "features_extractor_kwargs": {"features_dim": features_dim},
        "normalize_images": False,
        "net_arch": {"pi": [hidden, hidden], "vf": [hidden, hidden]},
        "activation_fn": torch.nn.Tanh,
        "share_features_extractor": True,
    }
