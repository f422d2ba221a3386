"""RE3: Random Encoders for Efficient Exploration (Seo et al. 2021, "State Entropy Maximization with
Random Encoders for Efficient Exploration").

A fixed, randomly initialised encoder ``y = f(s)`` embeds the states reached; the bonus is a
k-nearest-neighbour particle estimate of state entropy,

    b(s'_i) = log(1 + ||y_i - y_i^{(k)}||_2)

with ``y_i^{(k)}`` the ``k``-th nearest neighbour of ``y_i`` among the other embeddings of the same
rollout (all ``T * N`` transitions; for an ``[N]`` batch, the ``N`` states). Non-learning: ``update``
trains nothing. Paper default ``k = 3``.

Implementation: distances are computed in chunks of ``chunk_size`` queries (``torch.cdist`` against
all embeddings, then ``topk``), so memory is ``chunk_size x T*N`` floats, not ``(T*N)^2``. A query's
own embedding is excluded by taking the ``(k+1)``-th smallest distance (it is always among the
zeros); identical states count as neighbours at distance 0.

Deviations, stated: the paper computes neighbours within a sampled replay minibatch (for
off-policy SAC) or the rollout (for on-policy A2C); here it is always the rollout. The paper's
coefficient decay ``beta_t = beta_0 (1 - rho)^t`` is left to the combiner's schedule. Encoders are
the bonuses' ones with a random MLP head instead of the paper's pixel CNN. On MiniGrid the default
(``features="auto"``) embeds **privileged state** (the whole grid, the agent's cell and the carried
object from ``env.get_state()``, ``rewards.intrinsic.features``; learners record it for the bonus),
which the paper's agent never had, while the policy stays egocentric; other observation spaces, and
``features="obs"``, embed the observation (MiniGrid: the CNN without pooling,
``rlcore.nets.GridEncoder(pool=False)``, 512 features). The reason: from the view a new heading in a
visited cell was, on one of twelve histories of ``tests/test_intrinsic_position.py``, as far from
its neighbours as a newly reached cell; from the state (which leaves the heading out) turning in
place in a cell visited three times scores 0.
"""

from __future__ import annotations

import gymnasium as gym
import torch

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.rnd import bonus_metrics, feature_net
from rlcore.batch import TransitionBatch
from rlcore.tensors import obs_flatten_leading


class RE3(IntrinsicBonus):
    """k-NN state-entropy bonus over a fixed random encoder (global, non-episodic, non-learning).

    Args:
        observation_space, action_space: single-env spaces (the action space is not used).
        k: which nearest neighbour (paper: 3).
        embed_dim: size of the random embedding.
        hidden_dim: width of the random MLP head.
        encoder: for ``features="obs"``: ``"auto"`` (``"grid_nopool"`` for MiniGrid dicts, flatten
            otherwise), ``"mlp"``, ``"grid_nopool"`` or the policies' pooled ``"grid"`` / ``"minigrid"``.
        chunk_size: queries per ``cdist`` chunk.
        features: ``"auto"`` (default: privileged ``"state"``, MiniGrid's ``grid``, ``agent_pos`` and
            ``carrying``, for MiniGrid observations; ``"obs"`` otherwise), ``"obs"`` or ``"state"``;
            see ``rewards.intrinsic.features``.
    """

    name = "re3"
    episodic = False

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, k: int = 3, embed_dim: int = 64,
                 hidden_dim: int = 128, encoder: str = "auto", chunk_size: int = 1024, features: str = "auto") -> None:
        super().__init__(observation_space, action_space)
        owner = f"bonus '{self.name}'"
        if k < 1:
            raise ValueError(f"{owner}: k must be >= 1, got {k}")
        self.k, self.chunk_size = int(k), int(chunk_size)
        features = self.set_features(features)
        self.encoder_net = feature_net(observation_space, owner, embed_dim, hidden_dim, 1, encoder,
                                       features).requires_grad_(False)
        self._last_bonus = None

    @torch.no_grad()
    def knn_distance(self, y: torch.Tensor) -> torch.Tensor:
        """``float32[B]``: distance of each row of ``y: [B, d]`` to its k-th nearest other row."""
        n = y.shape[0]
        if n < 2:
            return torch.zeros(n, device=y.device)
        k = min(self.k, n - 1)
        out = []
        for start in range(0, n, self.chunk_size):
            d = torch.cdist(y[start:start + self.chunk_size], y, compute_mode="donot_use_mm_for_euclid_dist")  # [c, B]
            out.append(d.topk(k + 1, dim=1, largest=False).values[:, k])         # self is one of the zeros
        return torch.cat(out)

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        y = self.encoder_net(obs_flatten_leading(batch.next_obs, batch.reward.dim())).float()
        bonus = torch.log1p(self.knn_distance(y)).reshape(batch.batch_shape)
        self._last_bonus = bonus
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        return bonus_metrics(self._last_bonus)
