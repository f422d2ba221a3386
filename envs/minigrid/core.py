"""Batched MiniGrid engine: state as small integer tensors, step and observation as tensor ops.

Conventions (see ``docs/minigrid.md``):

* ``grid``: ``uint8[N, H, W, 3]`` indexed ``grid[n, y, x]`` (row-major). Farama's ``Grid.encode()``
  returns ``(W, H, 3)`` indexed ``[x, y]``; ``grid[n] == encode().transpose(1, 0, 2)``.
  Empty cells are ``(1, 0, 0)`` (Farama's ``"empty"`` encoding).
* ``agent_pos``: ``int64[N, 2]`` as ``(x, y)``; ``agent_dir``: ``int64[N]`` (0 right, 1 down, 2 left, 3 up).
* ``carrying``: ``uint8[N, 3]``; an empty hand is ``(1, 0, 0)``.
* ``contains``: ``uint8[N, H, W, 3]`` what a box at that cell holds (``(1, 0, 0)`` = nothing), and
  ``carrying_contains``: ``uint8[N, 3]`` what a carried box holds. Only tasks with boxes use them.
* observation ``image``: ``uint8[N, 7, 7, 3]`` indexed ``[n, vx, vy]`` exactly like Farama's
  ``gen_obs()["image"]`` (``vy = 6`` is the agent's row, ``vx = 3`` its column); with
  ``obs_mode="full"``, ``uint8[N, W, H, 3]`` indexed ``[n, x, y]`` exactly like Farama's
  ``minigrid.wrappers.FullyObsWrapper`` (the whole grid, the agent drawn as ``(AGENT, RED, dir)``).
"""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcore.env import BatchedEnv, EnvOptionError
from rlcore.spec import StateField, TaskInfo, describe_grid_obs

from . import constants as C
from .tasks import TaskSpec

VIEW = 7  # Farama's default agent_view_size (all supported tasks use it)


def _build_vis_table() -> torch.Tensor:
    """Row propagation table for Farama's ``Grid.process_vis`` on a 7-wide view.

    ``table[init_bits * 128 + transparent_bits] & 127`` is the visibility mask of one view row after
    Farama's left-to-right and right-to-left passes, given the cells already marked visible
    (``init_bits``) and which cells let the view through (``transparent_bits``); ``>> 7`` gives the
    cells those passes mark in the next row (Farama marks ``(i-1, i, i+1)`` of row ``j-1`` for every
    visible transparent cell ``i`` of row ``j``).
    """
    w = VIEW
    table = np.zeros(128 * 128, dtype=np.int64)
    for init in range(128):
        for t in range(128):
            m = [(init >> i) & 1 for i in range(w)]
            tr = [(t >> i) & 1 for i in range(w)]
            for i in range(w - 1):
                if m[i] and tr[i]:
                    m[i + 1] = 1
            for i in reversed(range(1, w)):
                if m[i] and tr[i]:
                    m[i - 1] = 1
            fin = sum(b << i for i, b in enumerate(m))
            # cells of the next (farther) row marked by this row: neighbours of transparent visible cells
            s = fin & t
            nxt = (s | (s << 1) | (s >> 1)) & 127
            table[init * 128 + t] = fin | (nxt << 7)
    return torch.from_numpy(table)


_VIS_TABLE_CPU = _build_vis_table()


def _build_vis_table_packed() -> torch.Tensor:
    """``int32[128*128]``: :func:`_build_vis_table` with the next row's marks pre-multiplied by 128.

    ``v & 127`` is the row's visibility mask and ``(v >> 7) & ~127`` the ``init_bits * 128`` base of the
    next row's lookup, so one row of propagation is an ``&``, an ``+`` and a lookup.
    """
    t = _VIS_TABLE_CPU
    return ((t & 127) | ((t >> 7) << 14)).to(torch.int32)


_VIS_TABLE_PACKED_CPU = _build_vis_table_packed()


def _build_vis_mask_table() -> torch.Tensor:
    """``int32[128, 7]``: ``-1`` (all bits set) where bit ``vx`` of the row mask is set, else ``0``."""
    b = torch.arange(128).view(128, 1)
    return -((b >> torch.arange(VIEW).view(1, VIEW)) & 1).to(torch.int32)


_VIS_MASK_TABLE_CPU = _build_vis_mask_table()
#: the packed-int32 observation path reads cell bytes out of int32 words (byte 0 = type)
_LITTLE_ENDIAN = sys.byteorder == "little"


def _view_offsets() -> torch.Tensor:
    """``int64[4, 7, 7, 2]``: world offset (dx, dy) of view cell (vx, vy) for each direction."""
    off = torch.zeros(4, VIEW, VIEW, 2, dtype=torch.int64)
    for d, (fx, fy) in enumerate(C.DIR_TO_VEC):
        rx, ry = -fy, fx
        for vx in range(VIEW):
            for vy in range(VIEW):
                fwd = VIEW - 1 - vy
                side = vx - VIEW // 2
                off[d, vx, vy, 0] = fx * fwd + rx * side
                off[d, vx, vy, 1] = fy * fwd + ry * side
    return off


class BatchedMiniGrid(BatchedEnv):
    """``num_envs`` copies of one MiniGrid task, stepped together as tensor ops on ``device``.

    Args:
        spec: the task (see :mod:`envs.minigrid.tasks`).
        num_envs: batch size ``N``.
        device: torch device holding all state.
        seed: seed of the layout generator (``reset(seed=...)`` re-seeds it).
        validate_actions: check that actions lie in ``[0, 7)`` and raise ``ValueError`` otherwise.
            The check reads a value back to the host, so it defaults to ``True`` on CPU (where that
            costs nothing) and ``False`` on CUDA, where out-of-range actions act as ``done`` (no-op)
            unless the flag is set (then an asynchronous device assert fires instead).
        reset_mode: how ``step`` resets finished envs. ``"where"`` draws fresh layouts for every row
            and selects them with ``torch.where`` where an episode ended: no host sync, so it is the
            choice on accelerators. ``"index"`` draws layouts only for the finished rows (found with
            ``nonzero``, which needs the values on the host): on CPU nothing has to cross a device
            boundary and it is about twice as fast. ``"auto"`` (default) picks ``"index"`` on CPU and
            ``"where"`` elsewhere.
        obs_mode: what ``obs["image"]`` holds. ``"partial"`` (default): the agent's 7x7 view,
            ``uint8[N, 7, 7, 3]``, as Farama's ``gen_obs()``. ``"full"``: the whole grid,
            ``uint8[N, W, H, 3]`` indexed ``[n, x, y]``, with the agent's cell drawn as
            ``(OBJECT_TO_IDX["agent"], COLOR_TO_IDX["red"], agent_dir)``, as Farama's
            ``minigrid.wrappers.FullyObsWrapper``. ``direction`` and ``mission`` are the same in both.
        layout: ``"procedural"`` (default): every reset draws a fresh layout (walls, doors, objects,
            the agent's start) from the layout generator, as Farama's tasks do when reset without a
            seed. ``"fixed"``: the "singleton" version of the task (Henaff et al. 2023, "A Study of
            Global and Episodic Bonuses for Exploration in Contextual MDPs"): one layout, drawn once
            from ``layout_seed``, starts every episode of every env, as Farama's task reset with the
            same seed each time. The layout is the library's draw for that seed (the batched tasks
            use their own random streams), not Farama's layout for the same seed. Dynamics that are
            random during an episode (Dynamic-Obstacles' moves) still use the layout generator.
        layout_seed: the seed of the one layout under ``layout="fixed"`` (the same for the training
            and the evaluation env, whatever ``seed`` is).
    """

    OBS_MODES = ("partial", "full")
    LAYOUTS = ("procedural", "fixed")

    def __init__(self, spec: TaskSpec, num_envs: int, device: str | torch.device = "cpu", seed: int | None = None,
                 validate_actions: bool | None = None, reset_mode: str = "auto", obs_mode: str = "partial",
                 layout: str = "procedural", layout_seed: int = 0):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.spec = spec
        self.env_id = spec.env_id
        self.num_envs = int(num_envs)
        self.device = torch.device(device)
        self.width, self.height = spec.width, spec.height
        self.max_steps = spec.max_steps
        self.see_through_walls = spec.see_through_walls
        self.missions: list[str] = list(spec.missions)
        self.validate_actions = (self.device.type == "cpu") if validate_actions is None else bool(validate_actions)
        if reset_mode not in ("auto", "where", "index"):
            raise EnvOptionError("reset_mode", f"must be 'auto', 'where' or 'index', got {reset_mode!r}")
        self.reset_mode = ("index" if self.device.type == "cpu" else "where") if reset_mode == "auto" else reset_mode
        if obs_mode not in self.OBS_MODES:
            raise EnvOptionError("obs_mode", f"must be one of {self.OBS_MODES}, got {obs_mode!r}")
        self.obs_mode = obs_mode
        if layout not in self.LAYOUTS:
            raise EnvOptionError("layout", f"must be one of {self.LAYOUTS}, got {layout!r}")
        if isinstance(layout_seed, bool) or not isinstance(layout_seed, (int, np.integer)) or layout_seed < 0:
            raise EnvOptionError("layout_seed", f"must be a non-negative integer, got {layout_seed!r}")
        self.layout, self.layout_seed = layout, int(layout_seed)

        self.num_actions = spec.num_actions
        self.single_action_space = gym.spaces.Discrete(self.num_actions)
        image_shape = (VIEW, VIEW, 3) if obs_mode == "partial" else (self.width, self.height, 3)
        self.single_observation_space = gym.spaces.Dict({
            "image": gym.spaces.Box(low=0, high=255, shape=image_shape, dtype=np.uint8),
            "direction": gym.spaces.Discrete(4),
            "mission": gym.spaces.Discrete(len(self.missions)),
        })
        describe_grid_obs(self.single_observation_space, C.SYMBOLIC_GRID)

        dev = self.device
        self._ar = torch.arange(self.num_envs, device=dev)
        self._dir_vec = torch.tensor(C.DIR_TO_VEC, dtype=torch.int64, device=dev)
        self._view_idx = self._build_view_index().to(dev)
        self._vis_table = _VIS_TABLE_CPU.to(dev)
        self._bit7 = (2 ** torch.arange(VIEW, device=dev)).long()  # [7]
        self._empty = C.cell_tensor(C.EMPTY_CELL, dev)
        self._wall = C.cell_tensor(C.WALL_CELL, dev)
        self._zero_f = torch.zeros((), dtype=torch.float32, device=dev)
        self._zero_u8 = torch.zeros((), dtype=torch.uint8, device=dev)
        self._init_bits = torch.tensor([1 << (VIEW // 2)], dtype=torch.int64, device=dev)
        self._vis_table_packed = _VIS_TABLE_PACKED_CPU.to(dev)
        self._vis_mask_table = _VIS_MASK_TABLE_CPU.to(dev)
        self._w7 = (2 ** torch.arange(VIEW, dtype=torch.uint8, device=dev)).view(1, VIEW, 1)
        #: scratch tensors of the packed observation path for the full batch, reused every step (fresh
        #: multi-megabyte allocations cost page faults on CPU): the packed grid uint8[N, H*W, 4] (byte 3
        #: always 0), view indices, gathered words, row masks and masked words
        self._obs_scratch: dict[str, torch.Tensor] | None = None
        self._agent_type_color = torch.tensor([C.AGENT, C.RED], dtype=torch.uint8, device=dev)

        self._nbr = torch.tensor([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=torch.int64, device=dev)
        self._obstacle_cell = C.cell_tensor((C.BALL, C.BLUE, 0), dev)
        #: replay hook for Dynamic-Obstacles (see ``_move_obstacles``)
        self.next_obstacle_pos: torch.Tensor | None = None
        self.generator = torch.Generator(device=dev)
        self._seeded = False
        if seed is not None:
            self.generator.manual_seed(int(seed))
            self._seeded = True
        #: under ``layout="fixed"``: the one layout, tensors with a leading batch dimension of 1
        self._fixed_layout: dict[str, torch.Tensor] | None = None
        if self.layout == "fixed":
            g = torch.Generator(device=dev)
            g.manual_seed(self.layout_seed)
            one = self.spec.generate(self.spec, 1, g, dev)
            self._fixed_layout = {k: v.clone() for k, v in one.items()}
        self.state: dict[str, torch.Tensor] = {}
        self._set_state(self._generate(self.num_envs))

    def _build_view_index(self) -> torch.Tensor:
        """``int64[H*W*4, 49]``: flat grid index of each view cell for agent cell ``y*W+x`` and dir."""
        H, W = self.height, self.width
        off = _view_offsets()  # [4,7,7,2]
        ys, xs = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        base = torch.stack([xs, ys], -1).view(H * W, 1, 1, 1, 2)
        c = base + off.unsqueeze(0)  # [HW,4,7,7,2]
        x = c[..., 0].clamp(0, W - 1)
        y = c[..., 1].clamp(0, H - 1)
        return (y * W + x).view(H * W * 4, VIEW * VIEW)

    # ------------------------------------------------------------------ state helpers
    def _generate(self, n: int) -> dict[str, torch.Tensor]:
        if self._fixed_layout is not None:
            lay = {k: v.expand(n, *v.shape[1:]) for k, v in self._fixed_layout.items()}
        else:
            lay = self.spec.generate(self.spec, n, self.generator, self.device)
        dev = self.device
        out = {
            "grid": lay["grid"],
            "agent_pos": lay["agent_pos"],
            "agent_dir": lay["agent_dir"],
            "carrying": self._empty.expand(n, 3).clone(),
            "step_count": torch.zeros(n, dtype=torch.int64, device=dev),
            "mission": lay.get("mission", torch.zeros(n, dtype=torch.int64, device=dev)),
            "goal_pos": lay.get("goal_pos", torch.full((n, 2), -1, dtype=torch.int64, device=dev)),
            "door_pos": lay.get("door_pos", torch.full((n, 2), -1, dtype=torch.int64, device=dev)),
            "target": lay.get("target", self._empty.expand(n, 3).clone()),
        }
        if self.spec.num_obstacles:
            out["obstacle_pos"] = lay["obstacle_pos"]
        if self.spec.has_boxes:
            out["contains"] = lay.get("contains", self._empty.expand(n, self.height, self.width, 3).clone())
            out["carrying_contains"] = self._empty.expand(n, 3).clone()
        return out

    def _set_state(self, st: dict[str, torch.Tensor]) -> None:
        # always copy: generators may return expanded views of cached constants
        self.state = {k: v.clone(memory_format=torch.contiguous_format) for k, v in st.items()}

    def _select_state(self, mask: torch.Tensor, new: dict[str, torch.Tensor]) -> None:
        for k, v in new.items():
            cur = self.state[k]
            m = mask.view(-1, *([1] * (cur.dim() - 1)))
            self.state[k] = torch.where(m, v, cur)

    # properties for the privileged tensors
    grid = property(lambda self: self.state["grid"])
    agent_pos = property(lambda self: self.state["agent_pos"])
    agent_dir = property(lambda self: self.state["agent_dir"])
    carrying = property(lambda self: self.state["carrying"])
    step_count = property(lambda self: self.state["step_count"])

    def get_state(self) -> dict[str, torch.Tensor]:
        """Privileged state (views of the live tensors; clone before mutating).

        ``grid`` uint8[N,H,W,3] (``[n, y, x]``), ``agent_pos`` int64[N,2] (x, y), ``agent_dir`` int64[N],
        ``carrying`` uint8[N,3], ``step_count`` int64[N], ``mission`` int64[N], ``goal_pos`` int64[N,2]
        (``-1`` where the task has none), ``door_pos`` int64[N,2] (the task's door of interest, or ``-1``),
        ``door_state`` int64[N] (state of the cell at ``door_pos``: 0 open, 1 closed, 2 locked; ``-1``
        if none), ``target`` uint8[N,3] (object to pick up in pickup tasks), ``contains`` /
        ``carrying_contains`` for tasks with boxes.
        """
        return self._privileged(self.state)

    def state_spec(self) -> dict[str, StateField]:
        """The keys of :meth:`get_state` for this task (``H, W`` = grid height, width; ``K`` obstacles)."""
        H, W = self.height, self.width
        cell = C.SYMBOLIC_GRID.codes()
        empty = "(1, 0, 0) = nothing"
        spec = {
            "grid": StateField(torch.uint8, (H, W, 3), "object, colour, state per cell, indexed [y, x] (Farama's "
                               "Grid.encode() transposed); empty floor is (1, 0, 0)", cell),
            "agent_pos": StateField(torch.int64, (2,), "(x, y) grid cell of the agent; x = column, y = row (down)"),
            "agent_dir": StateField(torch.int64, (), "heading: 0 right (+x), 1 down (+y), 2 left, 3 up",
                                    {"direction": dict(enumerate(C.DIR_NAMES))}),
            "carrying": StateField(torch.uint8, (3,), f"(object, colour, state) of the carried object; {empty}", cell),
            "step_count": StateField(torch.int64, (), f"steps taken in the episode (0 after a reset); truncated at "
                                     f"max_steps = {self.max_steps}"),
            "mission": StateField(torch.int64, (), "index into env.missions (the mission text of the episode)"),
            "goal_pos": StateField(torch.int64, (2,), "(x, y) of the goal cell; (-1, -1) where the task has none"),
            "door_pos": StateField(torch.int64, (2,), "(x, y) of the task's door of interest; (-1, -1) where none"),
            "target": StateField(torch.uint8, (3,), "(object, colour, state) of the object to pick up in pickup "
                                 "tasks; (1, 0, 0) in other tasks", cell),
        }
        if self.spec.num_obstacles:
            spec["obstacle_pos"] = StateField(torch.int64, (self.spec.num_obstacles, 2),
                                              "(x, y) of each moving obstacle (a blue ball)")
        if self.spec.has_boxes:
            spec["contains"] = StateField(torch.uint8, (H, W, 3), f"(object, colour, state) a box at cell [y, x] "
                                          f"holds; {empty}", cell)
            spec["carrying_contains"] = StateField(torch.uint8, (3,), f"what the carried box holds; {empty}", cell)
        spec["door_state"] = StateField(torch.int64, (), "state of the door at door_pos: 0 open, 1 closed, 2 locked; "
                                        "-1 where none",
                                        {"state": {-1: "none", **dict(enumerate(C.STATE_NAMES))}})
        return spec

    _SUCCESS_RULES = {
        "goal": "the agent moves forward onto the goal cell",
        "unlock": "the agent opens the door at door_pos (toggle with the matching key)",
        "pickup": "the agent picks up an object whose (object, colour) equals target",
    }

    def task_info(self) -> TaskInfo:
        """Family ``"minigrid"``, the task's success rule and the symbolic-grid vocabulary."""
        notes = (f"reward 1 - 0.9 * step_count / {self.max_steps} on success, else 0; stepping into lava "
                 "terminates without success")
        if self.spec.num_obstacles:
            notes += "; walking into an obstacle or a wall terminates with reward -1"
        return TaskInfo(family="minigrid", has_success=True,
                        success_rule=f"{self._SUCCESS_RULES[self.spec.success_mode]} (the episode terminates)",
                        success_kind=self.spec.success_mode,
                        grid=C.SYMBOLIC_GRID, grid_size=(self.width, self.height), grid_key="grid",
                        action_meanings=C.ACTION_MEANINGS[: self.num_actions], notes=notes)

    def _privileged(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` (a shallow copy) plus the derived ``door_state`` int64[N]: what ``get_state`` returns."""
        st = dict(state)
        dp = st["door_pos"]
        has = dp[:, 0] >= 0
        flat = dp[:, 1].clamp(min=0) * self.width + dp[:, 0].clamp(min=0)
        ds = st["grid"].reshape(self.num_envs, -1, 3)[self._ar, flat, 2].long()
        st["door_state"] = torch.where(has, ds, torch.full_like(ds, -1))
        return st

    # ------------------------------------------------------------------ observation
    def _observe(self, st: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.obs_mode == "full":
            return self._observe_full(st)
        if not self.see_through_walls and _LITTLE_ENDIAN:
            return self._observe_packed(st)
        grid, pos, d = st["grid"], st["agent_pos"], st["agent_dir"]
        n, H, W = grid.shape[0], self.height, self.width
        # flat grid indices of the 49 view cells: one table lookup per env (cells outside the grid
        # are clamped onto the border, which is wall in every supported task, as Farama shows them)
        key = (pos[:, 1] * W + pos[:, 0]) * 4 + d
        idx = self._view_idx[key]  # [N, 49]
        cells = torch.gather(grid.view(n, H * W, 3), 1, idx.unsqueeze(-1).expand(n, VIEW * VIEW, 3)).view(n, VIEW, VIEW, 3)
        if not self.see_through_walls:
            t = cells[..., 0]
            opaque = (t == C.WALL) | ((t == C.DOOR) & (cells[..., 2] != C.OPEN))
            tbits = ((~opaque).long() * self._bit7[None, :, None]).sum(1)  # [N, 7] bits over vx, per vy
            rows = []
            init = self._init_bits.expand(n)
            for vy in range(VIEW - 1, -1, -1):
                v = self._vis_table[init * 128 + tbits[:, vy]]
                rows.append(v)
                init = v >> 7
            rows.reverse()
            vbits = torch.stack(rows, 1) & 127  # [N, 7(vy)]
            vis = (vbits[:, None, :] & self._bit7[None, :, None]) != 0  # [N, 7(vx), 7(vy)]
            cells = torch.where(vis[..., None], cells, self._zero_u8)
        cells[:, VIEW // 2, VIEW - 1] = st["carrying"]
        return {"image": cells, "direction": d.clone(), "mission": st["mission"].clone()}

    def _observe_packed(self, st: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Partial view with occlusion, the same result as the generic path of :meth:`_observe`, on
        cells packed into int32 words (``type | colour << 8 | state << 16``): one int32 gather instead
        of a 3-byte one, and the occlusion as a few whole-view ops plus one table lookup per view row."""
        grid, pos, d = st["grid"], st["agent_pos"], st["agent_dir"]
        n, H, W = grid.shape[0], self.height, self.width
        key = (pos[:, 1] * W + pos[:, 0]) * 4 + d
        sc = self._obs_scratch
        if sc is None or sc["buf"].shape[0] != n:
            dev = grid.device
            sc = {"buf": torch.zeros(n, H * W, 4, dtype=torch.uint8, device=dev),
                  "idx": torch.empty(n, VIEW * VIEW, dtype=torch.int64, device=dev),
                  "v": torch.empty(n, VIEW * VIEW, dtype=torch.int32, device=dev),
                  "mask": torch.empty(n * VIEW, VIEW, dtype=torch.int32, device=dev),
                  "vm": torch.empty(n, VIEW, VIEW, dtype=torch.int32, device=dev)}
            if n == self.num_envs:
                self._obs_scratch = sc
        idx = torch.index_select(self._view_idx, 0, key, out=sc["idx"])  # [N, 49] over (vx, vy)
        buf = sc["buf"]
        g3 = grid.view(n, H * W, 3)
        for c in range(3):  # one strided copy per byte: much faster than a [..., :3] copy
            buf[..., c].copy_(g3[..., c])
        v = torch.gather(buf.view(torch.int32).view(n, H * W), 1, idx, out=sc["v"]).view(n, VIEW, VIEW)
        # walls and closed/locked doors block the view (Farama's see_behind); doors are the only
        # objects whose encoding has a non-zero state, and byte 3 is always 0, so a closed or locked
        # door is exactly a word >= 1 << 16
        opaque = ((v & 0xFF) == C.WALL) | (v >= 1 << 16)
        tbits = 127 - (opaque.view(torch.uint8) * self._w7).sum(1, dtype=torch.int32)  # [N, 7(vy)] over vx
        table = self._vis_table_packed
        rows: list[torch.Tensor] = [tbits] * VIEW
        r = table.index_select(0, tbits[:, VIEW - 1] + (1 << (VIEW // 2)) * 128)
        rows[VIEW - 1] = r
        for vy in range(VIEW - 2, -1, -1):
            r = table.index_select(0, ((r >> 7) & ~127) + tbits[:, vy])
            rows[vy] = r
        vbits = (torch.stack(rows, 1) & 127).long()  # [N, 7(vy)]
        mask = torch.index_select(self._vis_mask_table, 0, vbits.view(-1), out=sc["mask"]).view(n, VIEW, VIEW)
        vb = torch.bitwise_and(v, mask.transpose(1, 2), out=sc["vm"]).view(torch.uint8).view(n, VIEW, VIEW, 4)
        cells = torch.empty(n, VIEW, VIEW, 3, dtype=torch.uint8, device=grid.device)
        for c in range(3):
            cells[..., c].copy_(vb[..., c])
        cells[:, VIEW // 2, VIEW - 1] = st["carrying"]
        return {"image": cells, "direction": d.clone(), "mission": st["mission"].clone()}

    def _observe_full(self, st: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Farama's ``FullyObsWrapper`` image: ``grid`` transposed to ``[n, x, y]``, agent cell overwritten."""
        grid, pos, d = st["grid"], st["agent_pos"], st["agent_dir"]
        n = grid.shape[0]
        img = grid.transpose(1, 2).clone(memory_format=torch.contiguous_format)  # [N, W, H, 3], a copy
        agent = torch.cat([self._agent_type_color.expand(n, 2), d.to(torch.uint8).unsqueeze(1)], 1)
        img[self._ar[:n], pos[:, 0], pos[:, 1]] = agent  # index_put: no host sync
        return {"image": img, "direction": d.clone(), "mission": st["mission"].clone()}

    def mission_strings(self, mission) -> list[str]:
        """Mission texts of ``mission`` (``obs["mission"]``, an int64 tensor of indices into
        ``self.missions`` on any device, a sequence of ints, or an observation dict).

        Equal to Farama's ``env.mission`` for the same state. Host side (reads the indices back to the
        host, a sync on accelerators): meant for logging, pictures and language-conditioned setups
        that embed the vocabulary once, not for the stepping loop.
        """
        if isinstance(mission, dict):
            mission = mission["mission"]
        if isinstance(mission, torch.Tensor):
            mission = mission.reshape(-1).tolist()
        elif isinstance(mission, (int, np.integer)):
            mission = [int(mission)]
        return [self.missions[int(i)] for i in mission]

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            self.generator.manual_seed(int(seed))
            self._seeded = True
        elif not self._seeded:
            self.generator.seed()
            self._seeded = True
        self._set_state(self._generate(self.num_envs))
        return self._observe(self.state), {}

    def observe(self) -> dict[str, torch.Tensor]:
        """Observation of the current state (no stepping)."""
        return self._observe(self.state)

    def step(self, actions: torch.Tensor):
        a = self.check_actions(actions)
        if self.validate_actions:
            bad = (a < 0) | (a >= self.num_actions)
            if self.device.type == "cpu":
                if bool(bad.any()):
                    raise ValueError(f"actions must lie in [0, {self.num_actions}), got {a[bad].tolist()}")
            else:
                torch._assert_async(~bad.any(), f"MiniGrid action out of range [0, {self.num_actions})")
        st = self.state
        n, H, W = self.num_envs, self.height, self.width
        grid, pos, d, carry = st["grid"], st["agent_pos"], st["agent_dir"], st["carrying"]
        sc = st["step_count"] + 1

        fwd = pos + self._dir_vec[d]
        fx, fy = fwd[:, 0].clamp(0, W - 1), fwd[:, 1].clamp(0, H - 1)
        fidx = fy * W + fx
        gflat = grid.view(n, H * W, 3)
        cell = gflat[self._ar, fidx]  # [N,3]
        if self.spec.num_obstacles:
            # Farama's DynamicObstaclesEnv: actions >= 3 act as "left"; the cell in front is judged
            # before the obstacles move, then the obstacles move, then the agent acts
            a = torch.where(a >= 3, torch.zeros_like(a), a)
            not_clear = (cell[:, 0] != C.EMPTY) & (cell[:, 0] != C.GOAL)
            self._move_obstacles(st)
            cell = gflat[self._ar, fidx]
        ct, cc, cs = cell[:, 0], cell[:, 1], cell[:, 2]
        ht = carry[:, 0]

        is_fwd = a == C.FORWARD
        is_pick = a == C.PICKUP
        is_drop = a == C.DROP
        is_tog = a == C.TOGGLE

        # rotation
        d_new = torch.where(a == C.LEFT, (d + 3) % 4, torch.where(a == C.RIGHT, (d + 1) % 4, d))

        # forward
        can_overlap = (ct == C.EMPTY) | (ct == C.GOAL) | (ct == C.FLOOR) | (ct == C.LAVA) | ((ct == C.DOOR) & (cs == C.OPEN))
        move = is_fwd & can_overlap
        pos_new = torch.where(move[:, None], fwd, pos)
        at_goal = is_fwd & (ct == C.GOAL)
        terminated = at_goal | (is_fwd & (ct == C.LAVA))
        success = at_goal

        # pickup / drop
        hand_empty = ht == C.EMPTY
        pick = is_pick & ((ct == C.KEY) | (ct == C.BALL) | (ct == C.BOX)) & hand_empty
        drop = is_drop & (ct == C.EMPTY) & ~hand_empty

        # toggle: doors and boxes
        tog_door = is_tog & (ct == C.DOOR)
        locked = cs == C.LOCKED
        has_key = (ht == C.KEY) & (carry[:, 1] == cc)
        door_state = torch.where(locked, torch.where(has_key, C.OPEN, C.LOCKED),
                                 torch.where(cs == C.OPEN, C.CLOSED, C.OPEN)).to(torch.uint8)
        tog_box = is_tog & (ct == C.BOX)

        new_cell = torch.where(pick[:, None], self._empty, cell)
        new_cell = torch.where(drop[:, None], carry, new_cell)
        new_cell = torch.where(tog_door[:, None], torch.stack([ct, cc, door_state], 1), new_cell)
        carry_new = torch.where(pick[:, None], cell, torch.where(drop[:, None], self._empty, carry))

        if self.spec.has_boxes:
            contains, ccont = st["contains"], st["carrying_contains"]
            cflat = contains.view(n, H * W, 3)
            cell_cont = cflat[self._ar, fidx]
            new_cell = torch.where(tog_box[:, None], cell_cont, new_cell)
            new_cont = torch.where((pick | tog_box)[:, None], self._empty, cell_cont)
            new_cont = torch.where(drop[:, None], ccont, new_cont)
            ccont_new = torch.where(pick[:, None], cell_cont, torch.where(drop[:, None], self._empty, ccont))
            cflat[self._ar, fidx] = new_cont
            st["carrying_contains"] = ccont_new
        else:
            new_cell = torch.where(tog_box[:, None], self._empty, new_cell)
        gflat[self._ar, fidx] = new_cell

        # task-specific success
        mode = self.spec.success_mode
        if mode == "unlock":
            dp = st["door_pos"]
            dflat = dp[:, 1] * W + dp[:, 0]
            opened = is_tog & (gflat[self._ar, dflat, 2] == C.OPEN)
            terminated = terminated | opened
            success = success | opened
        elif mode == "pickup":
            tgt = st["target"]
            got = is_pick & (carry_new[:, 0] == tgt[:, 0]) & (carry_new[:, 1] == tgt[:, 1])
            terminated = terminated | got
            success = success | got

        reward = torch.where(success, 1.0 - 0.9 * (sc.to(torch.float32) / self.max_steps), self._zero_f)
        if self.spec.num_obstacles:  # walking into an obstacle or a wall ends the episode with -1
            hit = is_fwd & not_clear
            reward = torch.where(hit, -1.0, reward)
            terminated = terminated | hit
        truncated = (sc >= self.max_steps) & ~terminated

        st["agent_pos"], st["agent_dir"], st["carrying"], st["step_count"] = pos_new, d_new, carry_new, sc
        final_obs = self._observe(st)
        final_state = None
        if self.record_final_state:
            # "where" resets build new tensors for every key, leaving these untouched; "index" resets
            # (and the next step's grid writes) work in place, so that mode needs a snapshot
            final_state = self._privileged(st if self.reset_mode == "where" else {k: v.clone() for k, v in st.items()})

        # same-step auto-reset: fresh layouts for all rows, selected where an episode ended
        done = terminated | truncated
        if self.reset_mode == "where":
            self._select_state(done, self._generate(n))
            obs = self._observe(self.state)
        else:
            ids = done.nonzero().squeeze(1)
            obs = dict(final_obs)
            if ids.numel() > 0:
                new = self._generate(int(ids.numel()))
                new_obs = self._observe(new)
                for k, v in new.items():
                    self.state[k][ids] = v
                obs = {k: v.index_put((ids,), new_obs[k]) for k, v in final_obs.items()}
        info = {"final_obs": final_obs, "success": success}
        if final_state is not None:
            info["final_state"] = self.final_state = final_state
        return obs, reward, terminated, truncated, info

    # ------------------------------------------------------------------ moving obstacles
    #: Farama's obstacles try ``place_obj`` 101 times in the 3x3 square around them and stay put if
    #: every try hits an occupied cell
    _OBSTACLE_TRIES = 101

    def _move_obstacles(self, st: dict[str, torch.Tensor]) -> None:
        """Move each obstacle, in order, to a uniform empty cell of its 3x3 neighbourhood other than
        the agent's (Farama's ``DynamicObstaclesEnv.step``), in place on ``st``.

        ``self.next_obstacle_pos`` (int64[N, K, 2]), when set, gives the new positions instead of
        sampling them (used to replay Farama's random moves in differential tests); it is consumed.
        """
        n, H, W = self.num_envs, self.height, self.width
        gflat = st["grid"].view(n, H * W, 3)
        obst = st["obstacle_pos"].clone()
        forced = self.next_obstacle_pos
        self.next_obstacle_pos = None
        apos = st["agent_pos"]
        ball = self._obstacle_cell
        for k in range(self.spec.num_obstacles):
            old = obst[:, k]
            if forced is not None:
                new = forced[:, k]
            else:
                cand = old[:, None, :] + self._nbr  # [N, 9, 2]
                cidx = cand[..., 1].clamp(0, H - 1) * W + cand[..., 0].clamp(0, W - 1)
                ctype = torch.gather(gflat[..., 0], 1, cidx)
                free = (ctype == C.EMPTY) & ~(cand == apos[:, None, :]).all(-1)
                cnt = free.sum(1)
                u = torch.rand(n, generator=self.generator, device=self.device, dtype=torch.float64)
                p_fail = (1.0 - cnt.to(torch.float64) / 9.0) ** self._OBSTACLE_TRIES
                keys = torch.where(free, torch.rand(n, 9, generator=self.generator, device=self.device), -1.0)
                pick = cand[self._ar, keys.argmax(1)]
                new = torch.where(((cnt > 0) & (u >= p_fail))[:, None], pick, old)
            moved = (new != old).any(1)
            oidx = old[:, 1] * W + old[:, 0]
            nidx = new[:, 1] * W + new[:, 0]
            gflat[self._ar, oidx] = torch.where(moved[:, None], self._empty, gflat[self._ar, oidx])
            gflat[self._ar, nidx] = torch.where(moved[:, None], ball, gflat[self._ar, nidx])
            obst[:, k] = new
        st["obstacle_pos"] = obst

    # ------------------------------------------------------------------ Farama interop
    def load_minigrid(self, farama_envs: list, env_indices=None) -> dict[str, torch.Tensor]:
        """Copy the exact state of Farama ``MiniGridEnv`` instances into batch slots.

        Args:
            farama_envs: unwrapped Farama envs (already reset) of this task.
            env_indices: batch slots to write (default ``0 .. len(farama_envs) - 1``).

        Returns the observation of the whole batch.
        """
        from .farama import extract_state

        if env_indices is None:
            env_indices = list(range(len(farama_envs)))
        env_indices = [int(i) for i in env_indices]
        if len(env_indices) != len(farama_envs):
            raise ValueError("env_indices and farama_envs must have the same length")
        for i, fenv in zip(env_indices, farama_envs):
            if not 0 <= i < self.num_envs:
                raise IndexError(f"env index {i} outside [0, {self.num_envs})")
            s = extract_state(fenv, self.spec, self.missions)
            for k, v in s.items():
                if k in self.state:
                    self.state[k][i] = torch.as_tensor(v, device=self.device).to(self.state[k].dtype)
        return self._observe(self.state)

    def to_minigrid(self, index: int):
        """A Farama env whose state equals batch slot ``index`` (for rendering and debugging)."""
        from .farama import build_farama_env

        return build_farama_env(self, int(index))

    def _render_env(self):
        """A Farama env kept for rendering, overwritten with a slot's state on each frame."""
        fenv = getattr(self, "_farama_render_env", None)
        if fenv is None:
            from .farama import new_farama_env

            fenv = self._farama_render_env = new_farama_env(self.env_id)
        return fenv

    def render_rgb(self, index: int = 0, tile_size: int = 32, highlight: bool = True,
                   agent_pov: bool = False) -> np.ndarray:
        """RGB frame ``uint8[H*tile, W*tile, 3]`` of env ``index`` drawn by Farama's renderer
        (``agent_pov=True``: the agent's 7x7 view, ``uint8[7*tile, 7*tile, 3]``). Host side, not hot path."""
        from .farama import build_farama_env

        fenv = build_farama_env(self, int(index), fenv=self._render_env())
        return fenv.get_frame(highlight=highlight, tile_size=tile_size, agent_pov=agent_pov)

    def render_rgb_batch(self, indices=None, tile_size: int = 32, highlight: bool = True,
                         agent_pov: bool = False) -> np.ndarray:
        """RGB frames ``uint8[B, H*tile, W*tile, 3]`` of envs ``indices`` (default: all), as
        :meth:`render_rgb` for each. Host side: one Farama render per env (about a millisecond each for
        small grids at ``tile_size=32``), for pictures and videos, not the training loop."""
        if indices is None:
            indices = range(self.num_envs)
        elif isinstance(indices, torch.Tensor):
            indices = indices.reshape(-1).tolist()
        elif isinstance(indices, (int, np.integer)):
            indices = [int(indices)]
        frames = [self.render_rgb(int(i), tile_size=tile_size, highlight=highlight, agent_pov=agent_pov)
                  for i in indices]
        if not frames:
            raise ValueError("render_rgb_batch needs at least one index")
        return np.stack(frames)

    def state_nbytes_per_env(self) -> int:
        """Bytes of state tensors per env."""
        return sum(v.element_size() * v[0].numel() for v in self.state.values())
