"""The one transition type shared by PPO, reward modules, reward learners and offline data."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Optional

import torch

from rlcore.tensors import Obs, flatten_leading


@dataclass
class TransitionBatch:
    """A batch of transitions, shaped ``[T, N, ...]`` (a rollout) or ``[N, ...]`` (one step).

    Attributes:
        obs:        observation before the action (tensor or dict of tensors).
        action:     int64[..] (Discrete) or float32[.., A] (Box).
        reward:     float32[..], the environment's (extrinsic) reward.
        next_obs:   the true next observation; for an env whose episode ended at this step this is
                    the final observation of that episode, not the first of the next one.
        terminated: bool[..], the episode reached a terminal state at this step.
        truncated:  bool[..], the episode was cut at this step (time limit).
        state:      privileged state before the action (optional, from ``env.get_state()``).
        next_state: privileged state after the action (optional).
        log_prob:   float32[..], log-probability of the action under the policy that took it
                    (optional; rollouts and collected datasets record it).
    """

    obs: Obs
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: Obs
    terminated: torch.Tensor
    truncated: torch.Tensor
    state: Optional[dict[str, torch.Tensor]] = None
    next_state: Optional[dict[str, torch.Tensor]] = None
    log_prob: Optional[torch.Tensor] = None

    @property
    def done(self) -> torch.Tensor:
        """bool[..]: the episode ended at this step (terminated or truncated)."""
        return self.terminated | self.truncated

    @property
    def batch_shape(self) -> torch.Size:
        return self.reward.shape

    @property
    def device(self) -> torch.device:
        return self.reward.device

    def flatten(self) -> "TransitionBatch":
        """Merge the ``[T, N]`` leading dims into one ``[T * N]`` dim."""
        lead = len(self.reward.shape)
        return self.map(lambda x: flatten_leading(x, lead))

    def map(self, fn) -> "TransitionBatch":
        """Apply ``fn`` to every tensor (observations and states included)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                out[f.name] = None
            elif isinstance(value, dict):
                out[f.name] = {k: fn(v) for k, v in value.items()}
            else:
                out[f.name] = fn(value)
        return replace(self, **out)

    def to(self, device: torch.device | str) -> "TransitionBatch":
        return self.map(lambda x: x.to(device))
