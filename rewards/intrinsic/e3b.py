"""E3B: elliptical episodic bonus (Henaff et al. 2022, "Exploration via Elliptical Episodic Bonuses").

For each env the bonus of the state reached, ``s'``, is

    b(s') = phi(s')^T C^{-1} phi(s'),      C = lambda * I + sum_{states reached earlier this episode} phi phi^T

with ``phi`` an embedding trained by inverse dynamics (rewards.intrinsic.embedding). ``C^{-1}`` is
kept per env as an ``[N, d, d]`` tensor and updated with the Sherman-Morrison formula after each
step, all envs in one batched op; it resets to ``I / lambda`` right after an env's episode ends
(inside the batch, only for the envs that ended). With one-hot features a state reached ``n`` times
before in the episode scores exactly ``1 / (lambda + n)``, from the episode's second step on.

First step, as in the original: the bonus of an env's first step of an episode (the step scored
while its ``C`` is still ``lambda * I``: right after a reset or a done) is 0, and that step's state
still enters ``C``. The original (facebookresearch/e3b, ``minihack/torchbeast/src/utils.py``,
``act``: ``if step == 0: b = 0``) zeroes it too; without it every episode would open with the
constant ``|phi|^2 / lambda`` (``1 / lambda = 10`` with unit features), whatever the action. A
difference in timing, stated: the original scores the state the agent acts from, ``s_t`` (its
``encoder(env_output)`` runs before ``env.step``), with ``C`` over ``s_0 .. s_{t-1}``, the reset
observation ``s_0`` included; here the state reached, ``s_{t+1}``, is scored (as every bonus of this
library is), with ``C`` over the states reached earlier in the episode. Both run the same recursion
over a sequence of states (first one scored 0, each later one against those before it): the
original over ``s_0, s_1, ..`` (the reset observation first; the episode's last state never
scored), this module over ``s_1, s_2, ..`` (the reset observation never in ``C``).

Features. On MiniGrid, E3B by default (``features="auto"``) embeds **privileged state**, not the
agent's view: the whole grid, the agent's cell and the carried object from ``env.get_state()``
(``rewards.intrinsic.features.GridStateEncoder``, then the inverse-dynamics MLP); learners record
that state for the bonus, and the policy still acts on its egocentric view. Other observation
spaces, and ``features="obs"``, embed the observation (MiniGrid: the CNN without pooling,
``rlcore.nets.GridEncoder(pool=False)``, 512 features). The reason: from the 7x7 egocentric view an
elliptical bonus over this embedding did not rank a newly reached cell above a new heading in a
visited cell (``tests/test_intrinsic_position.py``: 12 of 12 seed pairs failed with the CNN without
pooling, 9 of 12 with the policies' pooled CNN, whose features are mostly heading), while the state
features rank the new cell first on all 12 (median ratio about 2). The paper's MiniHack embedding read the full map and the
agent's coordinates (``blstats``) through convolutions without pooling, so these features are
closer to it in content than the egocentric view is; MiniGrid's state is still information the
agent does not observe. Stated deviations of the features: privileged state by default on MiniGrid
(above); ``embed_dim`` 32 by default (the paper's MiniHack embedding has 1024 dimensions).

Deviations, stated: the episode's first observation (after reset) is not added to ``C`` — only the
states reached by steps are; features are recomputed with the current embedding at scoring time,
as in the paper's implementation; with ``normalize_features=True`` (the default here) ``phi`` is
scaled to unit length before scoring, so the bonus of a new state is at most ``1 / lambda`` and
measures novelty rather than the embedding's norm (unnormalised inverse-dynamics features grew
during training on MiniGrid and the raw bonus grew with them, from about 40 to over 600).
"""

from __future__ import annotations

import gymnasium as gym
import torch

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.embedding import InverseDynamicsEmbedding
from rlcore.batch import TransitionBatch
from rlcore.tensors import obs_flatten_leading


class E3B(IntrinsicBonus):
    """Elliptical episodic bonus.

    Args:
        observation_space, action_space: single-env spaces.
        embed_dim: feature size ``d`` (memory is ``N x d x d`` floats).
        ridge: ``lambda``, the ridge term of ``C`` (paper: 0.1).
        lr, epochs, minibatch_size: inverse-dynamics training per rollout.
        embedding: optional fixed feature map ``obs -> float[B, d]`` replacing the learned one
            (e.g. one-hot state features in tests); it is not trained. With ``features="state"`` it
            is given the state entries instead of observations.
        normalize_features: scale features to unit L2 norm before scoring (see the deviations).
        features: ``"auto"`` (default: privileged ``"state"`` for MiniGrid observations, ``"obs"``
            otherwise), ``"obs"`` or ``"state"``; see ``rewards.intrinsic.features``.
        encoder: for ``features="obs"``: ``"auto"`` (``"grid_nopool"`` for MiniGrid dicts, flatten
            otherwise), ``"mlp"``, ``"grid_nopool"`` or the policies' pooled ``"grid"``.
    """

    name = "e3b"
    episodic = True

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, embed_dim: int = 32,
                 ridge: float = 0.1, lr: float = 3e-4, epochs: int = 1, minibatch_size: int = 1024,
                 embedding=None, normalize_features: bool = True, features: str = "auto",
                 encoder: str = "auto") -> None:
        super().__init__(observation_space, action_space)
        if ridge <= 0:
            raise ValueError(f"bonus 'e3b': ridge must be > 0, got {ridge}")
        self.ridge = float(ridge)
        self.normalize_features = bool(normalize_features)
        self.fixed_embedding = embedding
        features = self.set_features(features)
        self.embedding = None if embedding is not None else InverseDynamicsEmbedding(
            observation_space, action_space, embed_dim=embed_dim, owner="bonus 'e3b'", lr=lr, epochs=epochs,
            minibatch_size=minibatch_size, features=features, encoder=encoder)
        self.embed_dim = embed_dim
        self.register_buffer("cov_inv", torch.zeros(0, embed_dim, embed_dim))

    def _features(self, obs) -> torch.Tensor:
        phi = self.fixed_embedding(obs) if self.fixed_embedding is not None else self.embedding(obs)
        return torch.nn.functional.normalize(phi, dim=-1) if self.normalize_features else phi

    def _ensure_memory(self, n: int, d: int, device: torch.device) -> None:
        if self.cov_inv.shape != (n, d, d) or self.cov_inv.device != device:
            self.cov_inv = torch.eye(d, device=device).repeat(n, 1, 1) / self.ridge

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "cov_inv"
        if key in state_dict:  # per-env memory is sized by the batch it last saw
            self.cov_inv = torch.zeros_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def reset(self, mask: torch.Tensor) -> None:
        if self.cov_inv.shape[0] == mask.shape[0]:
            eye = torch.eye(self.cov_inv.shape[-1], device=self.cov_inv.device) / self.ridge
            self.cov_inv = torch.where(mask[:, None, None], eye, self.cov_inv)

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        """``float32[T, N]``: ``phi(s')^T C^{-1} phi(s')``, 0 on an episode's first step (see the module docstring)."""
        T, N = batch.reward.shape
        phi = self._features(obs_flatten_leading(batch.next_obs, 2)).float().reshape(T, N, -1)
        d = phi.shape[-1]
        self._ensure_memory(N, d, phi.device)
        eye = torch.eye(d, device=phi.device) / self.ridge
        done = batch.done
        bonus = torch.empty(T, N, device=phi.device)
        cov_inv = self.cov_inv
        # an env's first step of an episode is the one whose C is still lambda * I (fresh memory: after
        # a reset or a done); its bonus is 0, as in the original, but its state still enters C
        first = (cov_inv == eye).flatten(1).all(1)            # [N]
        for t in range(T):
            u = phi[t]                                        # [N, d]
            cu = torch.bmm(cov_inv, u.unsqueeze(-1)).squeeze(-1)  # [N, d]
            b = (u * cu).sum(-1)                              # [N]; 0 only for u = 0 (C^-1 is PD)
            bonus[t] = torch.where(first, torch.zeros_like(b), b)
            cov_inv = cov_inv - torch.bmm(cu.unsqueeze(-1), cu.unsqueeze(-2)) / (1.0 + b)[:, None, None]
            cov_inv = torch.where(done[t][:, None, None], eye, cov_inv)
            first = done[t] | (first & (b == 0))             # a zero feature leaves C as it was
        self.cov_inv = cov_inv
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        if self.embedding is None:
            return {}
        return {"inverse_loss": self.embedding.fit(batch)}
