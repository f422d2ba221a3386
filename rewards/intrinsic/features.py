"""Where the features of an embedding-based exploration bonus come from: the observation or privileged state.

Bonuses that measure novelty in an embedding (E3B, NGU's episodic kNN, RND, RE3, ICM) take
``features``, one of :data:`FEATURE_SOURCES`:

* ``"obs"``: the policy's observation, through :func:`bonus_encoder`. For symbolic-grid (MiniGrid)
  observations that is :class:`rlcore.nets.GridEncoder` *without* its max-pool (``"grid_nopool"``:
  three 2x2 convolutions keep a 4x4 map of the 7x7 view, then :data:`GRID_FEATURES` = 512 ReLU
  features, the size of RLeXplore's MiniGrid encoder), so where things are in the view is kept. The
  policies keep the pooled encoder, whose 7x7 view ends as one 1x1 cell: over the states of
  Empty-8x8, the agent's heading explained about 86% of the variance of an (untrained) E3B
  embedding built on it, and its cell about 3%.
* ``"state"``: **privileged information**. The bonus is computed from the env's ``get_state()``
  rather than from what the agent sees, while the policy keeps acting on its egocentric view:
  :class:`GridStateEncoder` embeds the whole grid (every cell's object, colour and state, so open
  doors and picked-up keys show), the agent's cell and the carried object (:data:`STATE_FEATURE_KEYS`).
  The bonus asks learners for these entries (``needs_state``, ``state_keys``); a batch without them
  raises ``ValueError`` naming the bonus. The agent's heading is left out on purpose, as in the
  ``counts_state`` config: turning in place does not make a state new, reaching a new cell does.
* ``"auto"``: ``"state"`` for symbolic-grid observations whose vocabulary is known (MiniGrid), else
  ``"obs"``.

Defaults, chosen with ``tests/test_intrinsic_position.py`` (a newly reached cell must outscore a new
heading in a visited cell): E3B, RE3 and ICM ``"auto"`` (privileged state on MiniGrid: from the view
they failed it on some or most seeds), NGU and RND ``"obs"`` (the view without pooling passed it).
NovelD's inner RND reads the observation. The batched MiniGrid (``envs.minigrid``) provides the
state; MiniGrid through the gymnasium adapter has no ``grid`` or ``carrying`` in its state, so use
``features="obs"`` there.

How the state reaches the networks: a bonus with ``features="state"`` gets, in ``compute`` and
``update``, the batch from :func:`state_as_obs`: ``obs`` and ``next_obs`` replaced by the
:data:`STATE_FEATURE_KEYS` entries of ``state`` and ``next_state`` (see
:class:`rewards.intrinsic.base.IntrinsicBonus`). Everything the bonus does with observations (embed,
train, compare) it then does with the state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import gymnasium as gym
import torch
from torch import nn

from rlcore.batch import TransitionBatch
from rlcore.nets import GRID_NOPOOL, is_grid_space, make_encoder
from rlcore.spec import grid_of

#: values of a bonus's ``features`` argument
FEATURE_SOURCES = ("auto", "obs", "state")
#: the ``get_state()`` entries :class:`GridStateEncoder` reads (MiniGrid's names)
STATE_FEATURE_KEYS = ("grid", "agent_pos", "carrying")
#: feature size of the bonuses' symbolic-grid observation encoder (RLeXplore's MiniGrid encoder: 512)
GRID_FEATURES = 512
#: feature size of :class:`GridStateEncoder` in the bonuses
STATE_FEATURES = 128


def resolve_features(features: str, space: gym.Space, owner: str) -> str:
    """``"obs"`` or ``"state"``: ``features`` checked, ``"auto"`` resolved for ``space``.

    Raises ``ValueError`` naming ``owner`` for an unknown value, or for ``"state"`` where ``space`` is
    not a symbolic grid with its vocabulary attached (:func:`rlcore.spec.grid_of`).
    """
    if features not in FEATURE_SOURCES:
        raise ValueError(f"{owner}: features must be one of {', '.join(map(repr, FEATURE_SOURCES))}, got {features!r}")
    has_grid = is_grid_space(space) and grid_of(space) is not None
    if features == "auto":
        return "state" if has_grid else "obs"
    if features == "state" and not has_grid:
        raise ValueError(f"{owner}: features='state' reads the privileged state of a symbolic grid world "
                         f"(MiniGrid: {', '.join(STATE_FEATURE_KEYS)}), so it needs a symbolic-grid observation "
                         f"space with its vocabulary attached; got {space}. Use features='obs'")
    return features


def bonus_encoder(space: gym.Space, owner: str, features: str = "obs", encoder: str = "auto",
                  out_dim: Optional[int] = None) -> nn.Module:
    """The first stage of a bonus's networks, with an ``out_dim`` attribute.

    ``features="state"``: a :class:`GridStateEncoder` (``out_dim`` default :data:`STATE_FEATURES`)
    over the vocabulary attached to ``space``; ``encoder`` must then be ``"auto"``.
    ``features="obs"``: ``rlcore.nets.make_encoder(space, encoder)`` where ``encoder="auto"`` means
    ``"grid_nopool"`` (``out_dim`` default :data:`GRID_FEATURES`) for symbolic grids and ``"mlp"``
    (flatten) otherwise; the policies' pooled ``"grid"`` (alias ``"minigrid"``) can still be asked
    for by name.
    """
    features = resolve_features(features, space, owner)
    if features == "state":
        if encoder != "auto":
            raise ValueError(f"{owner}: encoder={encoder!r} applies to features='obs'; features='state' uses "
                             "the privileged-state encoder (leave encoder='auto')")
        return GridStateEncoder(grid_of(space).vocab_sizes, out_dim=out_dim or STATE_FEATURES, owner=owner)
    if encoder == "auto":
        encoder = GRID_NOPOOL if is_grid_space(space) else "mlp"
    return make_encoder(space, encoder, owner=owner, out_dim=out_dim or GRID_FEATURES)


def state_as_obs(batch: TransitionBatch, owner: str, keys: Sequence[str] = STATE_FEATURE_KEYS) -> TransitionBatch:
    """``batch`` with ``obs`` / ``next_obs`` replaced by the ``keys`` entries of ``state`` / ``next_state``.

    Everything else (actions, rewards, episode ends, the states themselves) is kept. Raises
    ``ValueError`` naming ``owner`` when the batch carries no privileged state or lacks a key.
    """
    out = {}
    for obs_name, state_name in (("obs", "state"), ("next_obs", "next_state")):
        state = getattr(batch, state_name)
        if state is None:
            raise ValueError(f"{owner} computes its bonus from privileged state (features='state': "
                             f"{', '.join(keys)} of env.get_state()), but the batch has no {state_name}; the env "
                             "must provide get_state() and the learner record it (it does for a module with "
                             "needs_state), or use features='obs'")
        missing = [k for k in keys if k not in state]
        if missing:
            raise ValueError(f"{owner} computes its bonus from privileged state (features='state'), but "
                             f"{state_name} has no {missing} (it has {sorted(state)}); use features='obs'")
        out[obs_name] = {k: state[k] for k in keys}
    return TransitionBatch(**{**vars(batch), **out})


class GridStateEncoder(nn.Module):
    """Privileged state of a symbolic grid world -> ``float32[B, out_dim]``: the whole grid, the agent's cell
    and the carried object, one-hot coded and mapped linearly, then ReLU.

    Input: a flat dict with ``grid: uint8[B, H, W, 3]`` (``(object, colour, state)`` per cell, indexed
    ``[y, x]``), ``agent_pos: int64[B, 2]`` (``(x, y)``) and ``carrying: uint8[B, 3]`` (MiniGrid's
    ``get_state()`` entries, :data:`STATE_FEATURE_KEYS`).

    ``features = ReLU(W_grid g / sqrt(3 H W) + W_cell c + W_carry k / sqrt(3) + b)``, with ``g`` the
    one-hot codes of every (cell, channel) pair, ``c`` the one-hot agent cell and ``k`` the one-hot
    codes of the carried object: a linear layer on the flattened one-hot grid, computed as one
    ``EmbeddingBag`` sum (no ``H*W*codes``-wide tensor is built). Rows are ``N(0, 1)``, so each of the
    three parts adds about unit variance whatever the grid size. The tables cover grids of up to
    ``max_grid_size`` cells a side, so one encoder fits every task of that size or smaller; a larger
    grid raises ``ValueError``.

    Args:
        vocab: ``(num_objects, num_colors, num_states)``; codes at or above a size share one extra
            "unknown" code per channel.
        out_dim: feature size.
        max_grid_size: the largest grid side covered (25: MiniGrid's largest tasks).
        owner: name used in errors.
    """

    def __init__(self, vocab: Sequence[int], out_dim: int = STATE_FEATURES, max_grid_size: int = 25,
                 owner: str = "encoder") -> None:
        super().__init__()
        if len(vocab) != 3 or min(vocab) < 1:
            raise ValueError(f"{owner}: vocab must be three positive sizes (objects, colours, states), got {tuple(vocab)}")
        self.vocab = tuple(int(v) for v in vocab)
        self.owner = owner
        self.max_grid_size = m = int(max_grid_size)
        self.codes = sum(v + 1 for v in self.vocab)                 # one-hot width of a cell
        self.cell_rows = m * m * self.codes                          # grid part
        self.carry_base = self.cell_rows + m * m                     # after the agent-cell part
        self.table = nn.EmbeddingBag(self.carry_base + self.codes, out_dim, mode="sum")
        nn.init.normal_(self.table.weight)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.out_dim = int(out_dim)
        offsets = [0, self.vocab[0] + 1, self.vocab[0] + self.vocab[1] + 2]
        self.register_buffer("channel_offset", torch.tensor(offsets, dtype=torch.int64), persistent=False)
        self.register_buffer("channel_max", torch.tensor(self.vocab, dtype=torch.int64), persistent=False)

    def _codes(self, cells: torch.Tensor) -> torch.Tensor:
        """``[..., 3]`` cell triples -> column of each channel's code within a cell's one-hot block."""
        return cells.long().clamp(min=0).minimum(self.channel_max) + self.channel_offset

    def forward(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        grid = state["grid"]
        b, h, w, _ = grid.shape
        m = self.max_grid_size
        if h > m or w > m:
            raise ValueError(f"{self.owner}: the privileged-state encoder covers grids up to {m}x{m} cells "
                             f"(max_grid_size), got {w}x{h}")
        ys = torch.arange(h, device=grid.device).view(1, h, 1, 1)
        xs = torch.arange(w, device=grid.device).view(1, 1, w, 1)
        cells = ((ys * m + xs) * self.codes + self._codes(grid)).reshape(b, -1)       # [B, 3 H W]
        pos = state["agent_pos"].long().reshape(b, 2)
        agent = (self.cell_rows + pos[:, 1] * m + pos[:, 0]).unsqueeze(1)             # [B, 1]
        carry = self.carry_base + self._codes(state["carrying"].reshape(b, 3))        # [B, 3]
        index = torch.cat([cells, agent, carry], dim=1)
        n = cells.shape[1]
        weights = torch.cat([torch.full((n,), 1 / math.sqrt(n), device=grid.device), torch.ones(1, device=grid.device),
                             torch.full((3,), 1 / math.sqrt(3), device=grid.device)]).expand(b, -1)
        return torch.relu(self.table(index, per_sample_weights=weights) + self.bias)
