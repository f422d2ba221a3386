"""NGU's episodic novelty (Badia et al. 2020, "Never Give Up: Learning Directed Exploration Strategies").

Each env keeps an episodic memory of the embeddings of the states it reached this episode (a padded
``[N, M, d]`` tensor with a per-env fill count, searched for all envs in one batched op). The bonus
of the state reached, with ``d_k^2`` the squared distances to its ``k`` nearest neighbours in memory
and ``mean_d2`` a running mean of those distances:

    d_n   = max(d_k^2 / mean_d2 - xi, 0)              (normalised, "cluster" distance)
    K     = eps / (d_n + eps)                         (inverse kernel)
    s     = sqrt(1 + sum_k K) + c                     (similarity; see the deviation below)
    b     = 1 / s   if s <= max_similarity else 0

Paper defaults: k = 10, eps = 1e-3, xi = 0.008, c = 1e-3, max_similarity = 8. The embedding is
trained by inverse dynamics (rewards.intrinsic.embedding). NGU's life-long modulator (an RND-based
multiplier) is the global x episodic product of rewards.intrinsic.combine with RND.

Features (``features``, see ``rewards.intrinsic.features``): ``"obs"`` (default) embeds the policy's
observation, for MiniGrid through the CNN without pooling (``rlcore.nets.GridEncoder(pool=False)``,
512 features, then the inverse-dynamics head); ``"state"`` embeds privileged MiniGrid state (the
whole grid, the agent's cell and the carried object) while the policy stays egocentric. The default
is the observation because it already ranks a newly reached cell above a new heading in a visited
cell (``tests/test_intrinsic_position.py``); the state features do so by a wider margin.

Deviations, stated: the reached state itself counts as one neighbour at distance 0 (kernel 1), so
``s = sqrt(1 + sum_k K) + c`` and a state unlike anything in memory scores about 1 rather than
``1 / c`` (an empty memory at the start of an episode would otherwise give 1000); when a memory is
full (``capacity`` states in one episode) the oldest entries are overwritten (the paper's memory is
sized to hold a whole episode); while a memory holds fewer than
``k`` states, the missing neighbours count as infinitely far (contributing 0 to the kernel sum).
"""

from __future__ import annotations

import gymnasium as gym
import torch

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.embedding import InverseDynamicsEmbedding
from rlcore.batch import TransitionBatch
from rlcore.tensors import obs_flatten_leading


class NGUEpisodic(IntrinsicBonus):
    """NGU's episodic kNN bonus over a learned embedding.

    Args:
        observation_space, action_space: single-env spaces.
        embed_dim: embedding size ``d``; capacity: memory slots ``M`` per env.
        k, kernel_epsilon, cluster_distance, c, max_similarity: the paper's constants.
        distance_momentum: running-mean rate of the k-NN squared distance.
        lr, epochs, minibatch_size: inverse-dynamics training per rollout.
        features: ``"obs"`` (default), ``"state"`` (privileged information: MiniGrid's ``grid``,
            ``agent_pos`` and ``carrying``, recorded by learners for it) or ``"auto"`` (``"state"`` for
            MiniGrid observations).
        encoder: for ``features="obs"``: ``"auto"`` (``"grid_nopool"`` for MiniGrid dicts, flatten
            otherwise), ``"mlp"``, ``"grid_nopool"`` or the policies' pooled ``"grid"``.
    """

    name = "ngu"
    episodic = True

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, embed_dim: int = 32,
                 capacity: int = 512, k: int = 10, kernel_epsilon: float = 1e-3, cluster_distance: float = 0.008,
                 c: float = 1e-3, max_similarity: float = 8.0, distance_momentum: float = 0.01,
                 lr: float = 3e-4, epochs: int = 1, minibatch_size: int = 1024, features: str = "obs",
                 encoder: str = "auto") -> None:
        super().__init__(observation_space, action_space)
        self.embedding = InverseDynamicsEmbedding(observation_space, action_space, embed_dim=embed_dim,
                                                  owner="bonus 'ngu'", lr=lr, epochs=epochs,
                                                  minibatch_size=minibatch_size, features=self.set_features(features),
                                                  encoder=encoder)
        self.capacity, self.k = int(capacity), int(k)
        self.kernel_epsilon, self.cluster_distance = float(kernel_epsilon), float(cluster_distance)
        self.c, self.max_similarity, self.momentum = float(c), float(max_similarity), float(distance_momentum)
        self.register_buffer("memory", torch.zeros(0, self.capacity, embed_dim))
        self.register_buffer("fill", torch.zeros(0, dtype=torch.long))
        self.register_buffer("mean_d2", torch.ones(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in ("memory", "fill"):
            if prefix + key in state_dict:
                setattr(self, key, torch.zeros_like(state_dict[prefix + key]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _ensure_memory(self, n: int, d: int, device: torch.device) -> None:
        if self.memory.shape[0] != n or self.memory.device != device:
            self.memory = torch.zeros(n, self.capacity, d, device=device)
            self.fill = torch.zeros(n, dtype=torch.long, device=device)
            self.mean_d2 = self.mean_d2.to(device)

    def reset(self, mask: torch.Tensor) -> None:
        if self.fill.shape[0] == mask.shape[0]:
            self.fill = torch.where(mask, torch.zeros_like(self.fill), self.fill)

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        T, N = batch.reward.shape
        phi = self.embedding(obs_flatten_leading(batch.next_obs, 2)).float().reshape(T, N, -1)
        self._ensure_memory(N, phi.shape[-1], phi.device)
        slots = torch.arange(self.capacity, device=phi.device)
        rows = torch.arange(N, device=phi.device)
        k = min(self.k, self.capacity)
        memory, fill, mean_d2 = self.memory, self.fill, self.mean_d2
        bonus = torch.empty(T, N, device=phi.device)
        for t in range(T):
            u = phi[t]                                                   # [N, d]
            d2 = (memory - u[:, None, :]).pow(2).sum(-1)                # [N, M]
            valid = slots[None, :] < fill[:, None].clamp(max=self.capacity)
            d2 = torch.where(valid, d2, torch.full_like(d2, float("inf")))
            knn = d2.topk(k, dim=-1, largest=False).values               # [N, k]
            finite = torch.isfinite(knn)
            n_finite = finite.sum()
            mean_now = torch.where(finite, knn, torch.zeros_like(knn)).sum() / n_finite.clamp(min=1)
            mean_d2 = torch.where(n_finite > 0, (1 - self.momentum) * mean_d2 + self.momentum * mean_now, mean_d2)
            dn = (knn / mean_d2.clamp(min=1e-8) - self.cluster_distance).clamp(min=0)
            kernel = torch.where(finite, self.kernel_epsilon / (dn + self.kernel_epsilon), torch.zeros_like(dn))
            similarity = (1.0 + kernel.sum(-1)).sqrt() + self.c  # the state itself: one neighbour at distance 0
            bonus[t] = torch.where(similarity > self.max_similarity, torch.zeros_like(similarity), 1.0 / similarity)
            write = fill % self.capacity
            memory[rows, write] = u
            fill = torch.where(batch.done[t], torch.zeros_like(fill), fill + 1)
        self.memory, self.fill, self.mean_d2 = memory, fill, mean_d2
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        return {"inverse_loss": self.embedding.fit(batch)}
