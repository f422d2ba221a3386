"""An observation embedding trained by inverse dynamics, used by E3B and NGU's episodic memory.

The embedding ``phi(s)`` is trained so that ``(phi(s), phi(s'))`` predicts the action taken between
them (Pathak et al. 2017's inverse model, used for E3B by Henaff et al. 2022 and for NGU by Badia et
al. 2020): features keep what the agent controls and drop what it does not.

Its first stage is :func:`rewards.intrinsic.features.bonus_encoder`: for MiniGrid observations the
CNN without pooling (512 features), or with ``features="state"`` the privileged-state encoder. With
the policies' pooled CNN the untrained embedding's variance over Empty-8x8's states was about 86%
heading and 3% cell: position was pooled away.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from rewards.intrinsic.features import bonus_encoder
from rlcore.batch import TransitionBatch
from rlcore.tensors import Obs, obs_index


class InverseDynamicsEmbedding(nn.Module):
    """``phi: obs -> float32[B, embed_dim]`` plus an inverse head ``(phi(s), phi(s')) -> action``.

    Args:
        observation_space, action_space: single-env spaces (Discrete or 1-D Box actions).
        embed_dim: feature size ``d`` (E3B keeps an ``N x d x d`` matrix per batch: keep it small).
        owner: name used in errors (e.g. ``"bonus 'e3b'"``).
        lr, epochs, minibatch_size: inverse-model training on each rollout.
        features, encoder: the first stage, see :func:`rewards.intrinsic.features.bonus_encoder`
            (``features`` here is ``"obs"`` or ``"state"``; with ``"state"`` the owner must feed
            state dicts, as :class:`rewards.intrinsic.base.IntrinsicBonus` does).
    """

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, embed_dim: int = 32,
                 owner: str = "embedding", lr: float = 3e-4, epochs: int = 1, minibatch_size: int = 1024,
                 features: str = "obs", encoder: str = "auto") -> None:
        super().__init__()
        encoder = bonus_encoder(observation_space, owner, features, encoder)
        self.phi = nn.Sequential(encoder, nn.Linear(encoder.out_dim, 128), nn.ReLU(), nn.Linear(128, embed_dim))
        if isinstance(action_space, gym.spaces.Discrete):
            self.discrete, act_dim = True, int(action_space.n)
        elif isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            self.discrete, act_dim = False, int(action_space.shape[0])
        else:
            raise ValueError(f"{owner} needs a Discrete or 1-D Box action space for its inverse model, got {action_space}")
        self.inverse = nn.Sequential(nn.Linear(2 * embed_dim, 128), nn.ReLU(), nn.Linear(128, act_dim))
        self.embed_dim = embed_dim
        self.epochs, self.minibatch_size = int(epochs), int(minibatch_size)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)

    def forward(self, obs: Obs) -> torch.Tensor:
        return self.phi(obs)

    def inverse_loss(self, obs: Obs, next_obs: Obs, action: torch.Tensor) -> torch.Tensor:
        head = self.inverse(torch.cat([self.phi(obs), self.phi(next_obs)], dim=-1))
        if self.discrete:
            return nn.functional.cross_entropy(head, action.long())
        return (head - action.float()).pow(2).sum(-1).mean()

    def fit(self, batch: TransitionBatch) -> float:
        """Train the inverse model on a flattened rollout; returns the mean loss (one host sync)."""
        flat = batch.flatten()
        n = flat.reward.shape[0]
        total = torch.zeros((), device=flat.reward.device)
        steps = 0
        for _ in range(self.epochs):
            perm = torch.randperm(n, device=flat.reward.device)
            for start in range(0, n, self.minibatch_size):
                idx = perm[start:start + self.minibatch_size]
                loss = self.inverse_loss(obs_index(flat.obs, idx), obs_index(flat.next_obs, idx), flat.action[idx])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total += loss.detach()
                steps += 1
        return float(total / max(steps, 1))

    # The optimiser's state travels with the module's state_dict (also when nested in a combiner).
    def get_extra_state(self):
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
