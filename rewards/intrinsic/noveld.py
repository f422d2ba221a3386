"""NovelD (Zhang et al. 2021, "NovelD: A Simple yet Effective Exploration Criterion").

The bonus rewards crossing the boundary from explored to unexplored regions, once per episode:

    b(s, s') = max(N(s') - alpha * N(s), 0) * 1[N_e(s') = 1]

with ``N`` the RND novelty (the L2 norm of the predictor's error, as in the paper's code, from an
:class:`rewards.intrinsic.rnd.RND` held inside), ``alpha`` = 0.5 (paper) and ``N_e(s')`` the count of
``s'`` in the current episode (the "episodic restriction on intrinsic reward": only the first visit
of a state in an episode is rewarded).

What the gate counts (``gate``):

* ``"state"`` — the full state, the default on MiniGrid (``gate="auto"`` on a MiniGrid dict
  observation space). The original (tianjunz/NovelD, ``src/utils.py``, ``act``) keys its
  ``episode_state_count_dict`` on ``env_output['frame']``, the ``FullyObsWrapper`` image: the whole
  grid with the agent's cell overwritten by ``(agent, red, agent_dir)`` — so agent position *and*
  heading, every door's state and every object's place; the carried object only through its absence
  from the grid. Here the key hashes the privileged ``next_state`` entries ``grid`` (objects, colours,
  door states), ``agent_pos`` and ``agent_dir`` (``FULL_STATE_KEYS``; ``state_keys=`` picks others):
  the same partition of an episode's states (the original loses only what lies under the agent,
  which within an episode is fixed by the layout: the agent stands only on empty floor, an open
  door, the goal or lava), so two states that differ only in heading are two states, as in the
  original. Learners record ``state``/``next_state`` for it (the module's ``needs_state``); a batch
  without them raises an error naming the bonus. Envs whose ``get_state()`` lacks ``grid`` (the
  Farama MiniGrid adapter has only ``agent_pos``/``agent_dir``) need ``gate="obs"`` or other
  ``state_keys``.
* ``"obs"`` — the observation ``s'`` (the default on other spaces, where the observation is the
  state): on MiniGrid the egocentric 7x7 view plus direction, a deviation from the original that
  merges states whose views agree (e.g. facing the same wall from different cells) and misses
  changes out of view.
* ``"none"`` — no gate: ``b = max(N(s') - alpha N(s), 0)`` on every step. This is the NovelD factor of
  facebookresearch/e3b's E3B x NovelD (``minihack/torchbeast/src/algos/e3b_noveld.py``, ``learn``),
  where E3B is the episodic factor; with ``alpha = 0`` it is that code's RND factor (the L2 norm of
  the error on ``s'``: "scale_fac=0 corresponds to E3BxRND").

Episodic memory: :class:`rewards.intrinsic.episodic_memory.EpisodicCounts`, a padded per-env ring of
hashed states with their counts; at each step of the ``[T, N]`` rollout all envs are checked at once
(one batched comparison against their memories). The memory of env ``i`` is cleared right after a
step where ``batch.done[t, i]`` (only that env), and by ``reset(mask)``. The first observation of an
episode (``batch.obs`` / ``batch.state`` at the step where the env's memory is empty) is counted too,
so returning to the start state is not a first visit — a deviation: the original counts each
episode's reset frame into the memory of the episode that just ended and then clears it, so there
the start state is rewarded on a return. States are hashed as in ``rewards.intrinsic.counts``
(exact for symbolic observations and privileged state, SimHash for float Box observations).

Deviations, stated: when an episode reaches more than ``capacity`` distinct states the oldest are
overwritten (and could be rewarded again); hash collisions (about ``2^-62`` per pair of distinct
keys) would suppress a first-visit reward. ``episodic`` (whether the intrinsic return stops at
episode ends) defaults to True as in the paper's IMPALA setup, where one discount applies to the sum
of rewards; set it False to treat the bonus as a global one.
"""

from __future__ import annotations

from typing import Optional, Sequence

import gymnasium as gym
import torch

from rewards.intrinsic.base import IntrinsicBonus
from rewards.intrinsic.episodic_memory import EpisodicCounts, episodic_counts_of
from rewards.intrinsic.hashing import StateKeyer
from rewards.intrinsic.rnd import RND, bonus_metrics, check_obs_space
from rlcore.batch import TransitionBatch
from rlcore.nets import is_grid_space
from rlcore.tensors import obs_cat, obs_flatten_leading

#: privileged MiniGrid state the default gate counts: NovelD's full-grid frame (grid + agent cell and heading)
FULL_STATE_KEYS = ("grid", "agent_pos", "agent_dir")
GATES = ("auto", "state", "obs", "none")


class NovelD(IntrinsicBonus):
    """NovelD bonus: RND novelty difference, gated to the first visit of a state in the episode.

    Args:
        observation_space, action_space: single-env spaces (the action space is not used).
        alpha: scale of the novelty of the state left (paper: 0.5).
        feature_dim, hidden_dim, encoder, lr, epochs, minibatch_size, update_proportion, normalize_obs,
            obs_clip: the inner :class:`~rewards.intrinsic.rnd.RND`.
        gate: what the first-visit gate counts: ``"state"`` (privileged full state, ``state_keys`` or
            ``FULL_STATE_KEYS``), ``"obs"`` (the observation), ``"none"`` (no gate), or ``"auto"``
            (``"state"`` on MiniGrid dict observations or when ``state_keys`` are given, else
            ``"obs"``). See the module docstring.
        hash_mode, simhash_bits: how observations are hashed for the ``"obs"`` gate (see
            :class:`~rewards.intrinsic.counts.CountBonus`).
        state_keys: ``next_state`` entries the ``"state"`` gate hashes (default ``FULL_STATE_KEYS``).
        features: what the inner RND's networks read (see
            :meth:`~rewards.intrinsic.base.IntrinsicBonus.set_features`): ``"auto"`` (default) is
            **privileged** state on MiniGrid (the whole grid, the agent's cell and the carried object,
            heading left out: :data:`~rewards.intrinsic.features.STATE_FEATURE_KEYS`) and the
            observation elsewhere; ``"obs"`` is the original's input (its RND reads the observation).
        capacity: states remembered per env and episode.
        episodic: whether learners stop the intrinsic return at episode ends.
    """

    name = "noveld"

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, alpha: float = 0.5,
                 feature_dim: int = 64, hidden_dim: int = 128, encoder: str = "auto", lr: float = 1e-4,
                 epochs: int = 4, minibatch_size: int = 1024, update_proportion: float = 0.25,
                 normalize_obs: bool = True, obs_clip: float = 5.0, hash_mode: str = "auto", simhash_bits: int = 32,
                 state_keys: Optional[Sequence[str]] = None, capacity: int = 1024, episodic: bool = True,
                 gate: str = "auto", features: str = "auto") -> None:
        super().__init__(observation_space, action_space)
        owner = f"bonus '{self.name}'"
        features = self.set_features(features)
        if capacity < 1:
            raise ValueError(f"{owner}: capacity must be >= 1, got {capacity}")
        if gate not in GATES:
            raise ValueError(f"{owner}: gate must be one of {list(GATES)}, got {gate!r}")
        if gate == "auto":
            gate = "state" if state_keys or is_grid_space(observation_space) else "obs"
        if gate != "state" and state_keys:
            raise ValueError(f"{owner}: state_keys={list(state_keys)} are hashed by the 'state' gate only, "
                             f"got gate={gate!r}")
        self.gate = gate
        check_obs_space(observation_space, owner, encoder)
        self.rnd = RND(observation_space, action_space, feature_dim=feature_dim, hidden_dim=hidden_dim,
                       encoder=encoder, lr=lr, epochs=epochs, minibatch_size=minibatch_size,
                       update_proportion=update_proportion, normalize_obs=normalize_obs, obs_clip=obs_clip,
                       features=features)
        if gate == "state":
            state_keys = list(state_keys) if state_keys else list(FULL_STATE_KEYS)
        self.keyer = None if gate == "none" else StateKeyer(observation_space, owner, mode=hash_mode, k=simhash_bits,
                                                             state_keys=state_keys)
        self.alpha, self.capacity, self.episodic = float(alpha), int(capacity), bool(episodic)
        self.memory = EpisodicCounts(self.capacity)
        self._last_bonus = None

    def reset(self, mask: torch.Tensor) -> None:
        self.memory.clear(mask)

    @torch.no_grad()
    def first_visits(self, batch: TransitionBatch) -> torch.Tensor:
        """``bool[T, N]`` (or ``[N]``): ``s'`` was not yet in the env's memory; advances the memory.
        All True for ``gate="none"``."""
        if self.keyer is None:
            return torch.ones(batch.batch_shape, dtype=torch.bool, device=batch.reward.device)
        if self.keyer.state_keys is not None and batch.next_state is None:
            raise ValueError(
                f"bonus '{self.name}': its first-visit gate counts privileged states {self.keyer.state_keys} (the "
                "original NovelD counts full-grid states) but the batch has no next_state; learners record it "
                "for a module whose needs_state is set (native PPO and the SB3 bridges do), or build the bonus "
                "with gate='obs' to gate on the observation")
        return episodic_counts_of(self.memory, self.keyer, batch) == 1

    @torch.no_grad()
    def compute(self, batch: TransitionBatch) -> torch.Tensor:
        lead = batch.reward.dim()
        obs, next_obs = obs_flatten_leading(batch.obs, lead), obs_flatten_leading(batch.next_obs, lead)
        self.rnd.obs_norm.update(next_obs)
        novelty = self.rnd.novelty(obs_cat([next_obs, obs]), squared=False)
        b = novelty.shape[0] // 2
        diff = (novelty[:b] - self.alpha * novelty[b:]).clamp(min=0).reshape(batch.batch_shape)
        bonus = diff * self.first_visits(batch).float()
        self._last_bonus = bonus
        return bonus

    def update(self, batch: TransitionBatch) -> dict[str, float]:
        loss = self.rnd.fit(obs_flatten_leading(batch.next_obs, batch.reward.dim()))
        return {"loss": float(loss), **bonus_metrics(self._last_bonus)}
