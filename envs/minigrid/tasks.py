"""Task specs and batched layout generators that follow Farama MiniGrid's ``_gen_grid``.

Each generator draws ``n`` layouts at once from a ``torch.Generator`` and returns a dict of tensors
(``grid`` uint8[n,H,W,3] indexed ``[y, x]``, ``agent_pos`` int64[n,2], ``agent_dir`` int64[n], and
optionally ``mission``, ``goal_pos``, ``door_pos``, ``target``, ``contains``). Farama samples with
rejection ("uniform over a rectangle, retry on occupied cells"), which is the uniform distribution
over the free cells of that rectangle; we sample that distribution directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from . import constants as C


@dataclass(frozen=True)
class TaskSpec:
    env_id: str
    family: str  # Farama class name, e.g. "DoorKeyEnv"
    width: int
    height: int
    max_steps: int
    see_through_walls: bool
    missions: tuple[str, ...]
    generate: Callable = field(compare=False, repr=False)
    kwargs: dict = field(default_factory=dict, compare=False)
    has_boxes: bool = False
    success_mode: str = "goal"  # "goal" | "unlock" | "pickup"
    #: every cell of the outer border is grey wall (cells outside the grid are read from the border)
    walled_border: bool = True
    #: which door ``door_pos`` tracks: "first" (Farama's ``env.door`` or the first door in row-major
    #: order), "locked" (the first locked door), "none"
    door_of_interest: str = "first"
    #: size of the Discrete action space (Farama's Dynamic-Obstacles uses 3)
    num_actions: int = 7
    #: number of moving obstacles (Dynamic-Obstacles), kept in the state as ``obstacle_pos``
    num_obstacles: int = 0


# ---------------------------------------------------------------------- sampling helpers
_CONST: dict = {}


def const(value, device, dtype=torch.uint8) -> torch.Tensor:
    """Cached constant tensor on ``device`` (avoids host-to-device copies in the hot path)."""
    key = (tuple(value) if isinstance(value, (tuple, list)) else value, str(device), dtype)
    t = _CONST.get(key)
    if t is None:
        t = _CONST[key] = torch.tensor(value, dtype=dtype, device=device)
    return t


def randint(gen: torch.Generator, lo, hi, n: int, device) -> torch.Tensor:
    """Uniform ints in ``[lo, hi)`` (``lo``/``hi`` ints or int64[n] tensors), like ``np_random.integers``."""
    u = torch.rand(n, generator=gen, device=device, dtype=torch.float64)
    span = hi - lo
    if isinstance(span, torch.Tensor):
        r = torch.minimum((u * span.to(torch.float64)).floor().long(), span - 1)
    else:
        r = (u * span).floor().long().clamp_(max=span - 1)
    return r + lo


def sample_free_cell(gen: torch.Generator, free: torch.Tensor) -> torch.Tensor:
    """Uniform cell among ``free`` (bool[n,H,W], ``[y, x]``; each row needs one free cell) -> int64[n,2] (x, y)."""
    n, H, W = free.shape
    flat = free.reshape(n, H * W)
    count = flat.sum(1)
    k = randint(gen, 0, count, n, free.device)  # k-th free cell
    csum = flat.long().cumsum(1)
    idx = (csum <= k[:, None]).sum(1)
    return torch.stack([idx % W, idx // W], 1)


def coords(H: int, W: int, device):
    ys = torch.arange(H, device=device).view(1, H, 1)
    xs = torch.arange(W, device=device).view(1, 1, W)
    return ys, xs


def walled_grid(n: int, H: int, W: int, device) -> torch.Tensor:
    """Empty room with the outer wall rectangle, uint8[n,H,W,3]."""
    key = ("walled", H, W, str(device))
    g = _CONST.get(key)
    if g is None:
        g = torch.empty(H, W, 3, dtype=torch.uint8)
        g[:] = torch.tensor(C.EMPTY_CELL, dtype=torch.uint8)
        g[0, :] = g[-1, :] = g[:, 0] = g[:, -1] = torch.tensor(C.WALL_CELL, dtype=torch.uint8)
        g = _CONST[key] = g.to(device)
    return g.expand(n, H, W, 3).clone()


def put_cells(grid: torch.Tensor, xy: torch.Tensor, value, mask: torch.Tensor | None = None) -> None:
    """``grid[i, y_i, x_i] = value`` (value uint8[3] or uint8[n,3]) for every row (where ``mask``)."""
    n, H, W, _ = grid.shape
    flat = grid.view(n, H * W, 3)
    ar = torch.arange(n, device=grid.device)
    idx = xy[:, 1] * W + xy[:, 0]
    v = value if isinstance(value, torch.Tensor) else const(value, grid.device)
    if v.dim() == 1:
        v = v.expand(n, 3)
    if mask is not None:
        v = torch.where(mask[:, None], v, flat[ar, idx])
    flat[ar, idx] = v


def object_cells(kind: int, color: torch.Tensor, state: int = 0) -> torch.Tensor:
    """uint8[n, 3] cells ``(kind, color[i], state)``."""
    return torch.stack([torch.full_like(color, kind), color, torch.full_like(color, state)], 1).to(torch.uint8)


def cell_is(grid: torch.Tensor, cell) -> torch.Tensor:
    return (grid == const(cell, grid.device)).all(-1)


# ---------------------------------------------------------------------- Empty
def gen_empty(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    H, W = spec.height, spec.width
    grid = walled_grid(n, H, W, device)
    goal = const((W - 2, H - 2), device, torch.int64).expand(n, 2)
    put_cells(grid, goal, C.GOAL_CELL)
    if spec.kwargs.get("random_start", False):
        # place_agent over the whole grid: uniform over interior cells except the goal, which is the
        # last interior cell in row-major order
        area = (W - 2) * (H - 2) - 1
        k = randint(gen, 0, area, n, device)
        pos = torch.stack([1 + k % (W - 2), 1 + k // (W - 2)], 1)
        d = randint(gen, 0, 4, n, device)
    else:
        pos = const((1, 1), device, torch.int64).expand(n, 2)
        d = torch.zeros(n, dtype=torch.int64, device=device)
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "goal_pos": goal}


# ---------------------------------------------------------------------- DoorKey
def gen_doorkey(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    H, W = spec.height, spec.width
    grid = walled_grid(n, H, W, device)
    goal = const((W - 2, H - 2), device, torch.int64).expand(n, 2)
    put_cells(grid, goal, C.GOAL_CELL)
    split = randint(gen, 2, W - 2, n, device)  # vertical wall column
    ys, xs = coords(H, W, device)
    grid = torch.where((xs == split.view(n, 1, 1))[..., None], const(C.WALL_CELL, device), grid)
    # agent: uniform over the free cells x in [1, split), y in [1, H-1)
    cw = split - 1
    area = cw * (H - 2)
    ka = randint(gen, 0, area, n, device)
    pos = torch.stack([1 + ka % cw, 1 + ka // cw], 1)
    d = randint(gen, 0, 4, n, device)
    door_y = randint(gen, 1, H - 2, n, device)
    door = torch.stack([split, door_y], 1)
    put_cells(grid, door, (C.DOOR, C.YELLOW, C.LOCKED))
    # key: uniform over the same region, excluding the agent's cell
    kk = randint(gen, 0, area - 1, n, device)
    kk = kk + (kk >= ka).long()
    key = torch.stack([1 + kk % cw, 1 + kk // cw], 1)
    put_cells(grid, key, (C.KEY, C.YELLOW, 0))
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "goal_pos": goal, "door_pos": door}


# ---------------------------------------------------------------------- LavaGap
def gen_lavagap(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    H, W = spec.height, spec.width
    grid = walled_grid(n, H, W, device)
    goal = const((W - 2, H - 2), device, torch.int64).expand(n, 2)
    put_cells(grid, goal, C.GOAL_CELL)
    gx = randint(gen, 2, W - 2, n, device)
    gy = randint(gen, 1, H - 1, n, device)
    ys, xs = coords(H, W, device)
    col = (xs == gx.view(n, 1, 1)) & (ys >= 1) & (ys <= H - 2) & (ys != gy.view(n, 1, 1))
    grid = torch.where(col[..., None], const(C.LAVA_CELL, device), grid)
    pos = const((1, 1), device, torch.int64).expand(n, 2)
    d = torch.zeros(n, dtype=torch.int64, device=device)
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "goal_pos": goal}


# ---------------------------------------------------------------------- Lava/SimpleCrossing
def gen_crossing(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    """Farama ``CrossingEnv``: ``k`` rivers drawn from the even rows/columns, one opening per crossing
    along a random monotone room path from the top-left to the bottom-right room."""
    H, W = spec.height, spec.width
    k = spec.kwargs["num_crossings"]
    obstacle = C.LAVA_CELL if spec.kwargs["obstacle"] == "lava" else C.WALL_CELL
    grid = walled_grid(n, H, W, device)
    goal = const((W - 2, H - 2), device, torch.int64).expand(n, 2)
    put_cells(grid, goal, C.GOAL_CELL)
    pos_v = list(range(2, H - 2, 2))  # x of vertical rivers
    pos_h = list(range(2, W - 2, 2))  # y of horizontal rivers
    rv, rh = len(pos_v), len(pos_h)
    # uniform random k-subset of the rivers (Farama: shuffle, keep the first k)
    keys = torch.rand(n, rv + rh, generator=gen, device=device)
    rank = keys.argsort(1).argsort(1)
    chosen = rank < k
    cv, ch = chosen[:, :rv], chosen[:, rv:]
    ys, xs = coords(H, W, device)
    obst = torch.zeros(n, H, W, dtype=torch.bool, device=device)
    inner_x = (xs >= 1) & (xs <= W - 2)
    inner_y = (ys >= 1) & (ys <= H - 2)
    for m, x in enumerate(pos_v):
        obst |= cv[:, m].view(n, 1, 1) & (xs == x) & inner_y
    for m, y in enumerate(pos_h):
        obst |= ch[:, m].view(n, 1, 1) & (ys == y) & inner_x
    grid = torch.where(obst[..., None], const(obstacle, device), grid)

    def limits(mask: torch.Tensor, positions: list[int], last: int) -> torch.Tensor:
        r = len(positions)
        lim = torch.full((n, r + 3), last, dtype=torch.int64, device=device)
        lim[:, 0] = 0
        slot = torch.where(mask, mask.long().cumsum(1), torch.full_like(mask, r + 2, dtype=torch.int64))
        vals = const(tuple(positions), device, torch.int64).expand(n, r)
        lim.scatter_(1, slot, vals)
        lim[:, r + 2] = last
        return lim

    lim_v = limits(cv, pos_v, H - 1)  # [0, sorted chosen vertical x..., H-1, ...]
    lim_h = limits(ch, pos_h, W - 1)
    nv = cv.sum(1)
    # path: nv horizontal moves (through vertical rivers) and nh vertical moves, in random order
    pkeys = torch.rand(n, k, generator=gen, device=device)
    prank = pkeys.argsort(1).argsort(1)
    is_h = prank < nv[:, None]
    room_i = torch.zeros(n, dtype=torch.int64, device=device)
    room_j = torch.zeros(n, dtype=torch.int64, device=device)
    g = lambda lim, idx: lim.gather(1, idx[:, None]).squeeze(1)  # noqa: E731
    for step in range(k):
        h = is_h[:, step]
        # crossing a vertical river at x = lim_v[room_i + 1], opening row uniform in the room's rows
        jh = randint(gen, g(lim_h, room_j) + 1, g(lim_h, room_j + 1), n, device)
        iv = randint(gen, g(lim_v, room_i) + 1, g(lim_v, room_i + 1), n, device)
        i = torch.where(h, g(lim_v, room_i + 1), iv)
        j = torch.where(h, jh, g(lim_h, room_j + 1))
        put_cells(grid, torch.stack([i, j], 1), C.EMPTY_CELL)
        room_i = room_i + h.long()
        room_j = room_j + (~h).long()
    pos = const((1, 1), device, torch.int64).expand(n, 2)
    d = torch.zeros(n, dtype=torch.int64, device=device)
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "goal_pos": goal}


# ---------------------------------------------------------------------- FourRooms
def gen_fourrooms(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    H = W = 19
    grid = walled_grid(n, H, W, device)
    ys, xs = coords(H, W, device)
    walls = ((xs == 9) | (ys == 9)).expand(n, H, W)
    grid = torch.where(walls[..., None], const(C.WALL_CELL, device), grid)
    a = randint(gen, 1, 9, n, device)
    b = randint(gen, 1, 9, n, device)
    c = randint(gen, 10, 18, n, device)
    dd = randint(gen, 10, 18, n, device)
    nine = torch.full_like(a, 9)
    for x, y in ((nine, a), (b, nine), (c, nine), (nine, dd)):
        put_cells(grid, torch.stack([x, y], 1), C.EMPTY_CELL)
    free = cell_is(grid, C.EMPTY_CELL)
    pos = sample_free_cell(gen, free)
    d = randint(gen, 0, 4, n, device)
    ar = torch.arange(n, device=device)
    free[ar, pos[:, 1], pos[:, 0]] = False
    goal = sample_free_cell(gen, free)
    put_cells(grid, goal, C.GOAL_CELL)
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "goal_pos": goal}


# ---------------------------------------------------------------------- RoomGrid tasks (1 x 2 rooms)
def sample_free_pos_dir(gen: torch.Generator, grid: torch.Tensor, region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Farama ``RoomGrid.place_agent``: uniform over (cell, direction) pairs with the cell empty and
    inside ``region`` (bool[H,W]) and the cell in front empty or wall (Farama redraws both otherwise)."""
    n, H, W, _ = grid.shape
    t = grid[..., 0]
    free = (t == C.EMPTY) & region
    ok_front = (t == C.EMPTY) | (t == C.WALL)
    pad = torch.ones(n, H + 2, W + 2, dtype=torch.bool, device=grid.device)
    pad[:, 1:-1, 1:-1] = ok_front
    valid = torch.stack([free & pad[:, 1 + dy:H + 1 + dy, 1 + dx:W + 1 + dx] for dx, dy in C.DIR_TO_VEC], -1)
    flat = valid.reshape(n, H * W * 4)
    k = randint(gen, 0, flat.sum(1), n, grid.device)
    idx = (flat.long().cumsum(1) <= k[:, None]).sum(1)
    cell, d = idx // 4, idx % 4
    return torch.stack([cell % W, cell // W], 1), d


def rand_color(gen: torch.Generator, n: int, device) -> torch.Tensor:
    """``_rand_color``: uniform over Farama's sorted colour names, returned as COLOR_TO_IDX."""
    return const(C.SORTED_COLOR_IDX, device, torch.int64)[randint(gen, 0, 6, n, device)]


def gen_unlock_family(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    """Farama ``UnlockEnv`` / ``UnlockPickupEnv`` / ``BlockedUnlockPickupEnv`` (RoomGrid 1 x 2, room size 6)."""
    variant = spec.kwargs["variant"]  # "unlock" | "pickup" | "blocked"
    H, W = spec.height, spec.width  # 6, 11
    grid = walled_grid(n, H, W, device)
    ys, xs = coords(H, W, device)
    grid = torch.where((xs == 5).expand(n, H, W)[..., None], const(C.WALL_CELL, device), grid)
    door_y = randint(gen, 1, 5, n, device)  # RoomGrid._gen_grid draws the door row of room (0,0)
    door = torch.stack([torch.full_like(door_y, 5), door_y], 1)
    room0 = ((xs >= 1) & (xs <= 4) & (ys >= 1) & (ys <= 4))[0]
    room1 = ((xs >= 6) & (xs <= 9) & (ys >= 1) & (ys <= 4))[0]
    out = {}
    if variant in ("pickup", "blocked"):
        box_color = rand_color(gen, n, device)
        # place_in_room rejects cells next to the RoomGrid's provisional agent position (8, 3)
        near = ((xs - 8).abs() + (ys - 3).abs() < 2)[0]
        box = sample_free_cell(gen, (room1 & ~near).expand(n, H, W))
        put_cells(grid, box, object_cells(C.BOX, box_color))
        out["target"] = object_cells(C.BOX, box_color)
        # mission vocabulary is ordered like Farama's sorted colour names
        sorted_pos = const(tuple(C.SORTED_COLOR_IDX.index(c) for c in range(6)), device, torch.int64)
        out["mission"] = sorted_pos[box_color] * (2 if variant == "blocked" else 1)
    door_color = rand_color(gen, n, device)
    put_cells(grid, door, object_cells(C.DOOR, door_color, C.LOCKED))
    if variant == "blocked":
        ball_color = rand_color(gen, n, device)
        ball = torch.stack([door_y.new_full((n,), 4), door_y], 1)
        put_cells(grid, ball, object_cells(C.BALL, ball_color))
    free0 = cell_is(grid, C.EMPTY_CELL) & room0
    key = sample_free_cell(gen, free0)
    put_cells(grid, key, object_cells(C.KEY, door_color))
    pos, d = sample_free_pos_dir(gen, grid, room0)
    out.update({"grid": grid, "agent_pos": pos, "agent_dir": d, "door_pos": door})
    return out


# ---------------------------------------------------------------------- registry
_SPECS: dict[str, TaskSpec] = {}


def _register(spec: TaskSpec) -> None:
    _SPECS[spec.env_id] = spec


for _s in (5, 6, 8, 16):
    _register(TaskSpec(f"MiniGrid-Empty-{_s}x{_s}-v0", "EmptyEnv", _s, _s, 4 * _s * _s, True,
                       ("get to the green goal square",), gen_empty, {"size": _s}))
for _s in (5, 6):
    _register(TaskSpec(f"MiniGrid-Empty-Random-{_s}x{_s}-v0", "EmptyEnv", _s, _s, 4 * _s * _s, True,
                       ("get to the green goal square",), gen_empty, {"size": _s, "random_start": True}))
for _s in (5, 6, 8, 16):
    _register(TaskSpec(f"MiniGrid-DoorKey-{_s}x{_s}-v0", "DoorKeyEnv", _s, _s, 10 * _s * _s, False,
                       ("use the key to open the door and then get to the goal",), gen_doorkey, {"size": _s}))

_register(TaskSpec("MiniGrid-FourRooms-v0", "FourRoomsEnv", 19, 19, 100, False, ("reach the goal",), gen_fourrooms))
for _s in (5, 6, 7):
    _register(TaskSpec(f"MiniGrid-LavaGapS{_s}-v0", "LavaGapEnv", _s, _s, 4 * _s * _s, False,
                       ("avoid the lava and get to the green goal square",), gen_lavagap, {"size": _s}))
for _kind, _name, _mission in (("lava", "LavaCrossing", "avoid the lava and get to the green goal square"),
                               ("wall", "SimpleCrossing", "find the opening and get to the green goal square")):
    for _s, _k in ((9, 1), (9, 2), (9, 3), (11, 5)):
        _register(TaskSpec(f"MiniGrid-{_name}S{_s}N{_k}-v0", "CrossingEnv", _s, _s, 4 * _s * _s, False, (_mission,),
                           gen_crossing, {"size": _s, "num_crossings": _k, "obstacle": _kind}))

_register(TaskSpec("MiniGrid-Unlock-v0", "UnlockEnv", 11, 6, 8 * 36, False, ("open the door",), gen_unlock_family,
                   {"variant": "unlock"}, success_mode="unlock"))
_register(TaskSpec("MiniGrid-UnlockPickup-v0", "UnlockPickupEnv", 11, 6, 8 * 36, False,
                   tuple(f"pick up the {c} box" for c in C.SORTED_COLOR_NAMES), gen_unlock_family,
                   {"variant": "pickup"}, has_boxes=True, success_mode="pickup"))
_register(TaskSpec("MiniGrid-BlockedUnlockPickup-v0", "BlockedUnlockPickupEnv", 11, 6, 16 * 36, False,
                   tuple(f"pick up the {c} {t}" for c in C.SORTED_COLOR_NAMES for t in ("box", "key")),
                   gen_unlock_family, {"variant": "blocked"}, success_mode="pickup"))

# multi-room RoomGrid tasks (generators in tasks_roomgrid, which imports the helpers above)
from .tasks_roomgrid import gen_keycorridor  # noqa: E402

for _s, _r in ((3, 1), (3, 2), (3, 3), (4, 3), (5, 3), (6, 3)):
    _register(TaskSpec(f"MiniGrid-KeyCorridorS{_s}R{_r}-v0", "KeyCorridorEnv", 3 * (_s - 1) + 1, _r * (_s - 1) + 1,
                       30 * _s * _s, False, tuple(f"pick up the {c} ball" for c in C.SORTED_COLOR_NAMES),
                       gen_keycorridor, {"room_size": _s, "num_rows": _r}, success_mode="pickup",
                       door_of_interest="locked"))

from .tasks_more import gen_multiroom  # noqa: E402

for _name, _nr, _sz in (("N2-S4-v0", 2, 4), ("N4-S5-v0", 6, 5), ("N4-S5-v1", 4, 5), ("N6-v0", 6, 10)):
    # Farama's legacy N4-S5-v0 id is configured with 6 rooms; -v1 has 4
    _register(TaskSpec(f"MiniGrid-MultiRoom-{_name}", "MultiRoomEnv", 25, 25, 20 * _nr, False,
                       ("traverse the rooms to get to the goal",), gen_multiroom,
                       {"num_rooms": _nr, "max_room_size": _sz}, walled_border=False, door_of_interest="none"))

from .tasks_roomgrid import gen_obstructedmaze  # noqa: E402

_OM_MISSIONS = (f"pick up the {C.SORTED_COLOR_NAMES[0]} ball",)
for _name, _kb, _bl in (("1Dl", False, False), ("1Dlh", True, False), ("1Dlhb", True, True)):
    _register(TaskSpec(f"MiniGrid-ObstructedMaze-{_name}-v0", "ObstructedMaze_1Dlhb", 11, 6, 4 * 2 * 36, False,
                       _OM_MISSIONS, gen_obstructedmaze, {"layout": "1Dlhb", "key_in_box": _kb, "blocked": _bl},
                       has_boxes=_kb, success_mode="pickup", door_of_interest="none"))
_OM_FULL = {  # id stem: (agent room, key in box, blocked, quarters, rooms visited); Farama's registrations
    "2Dl": ((2, 1), False, False, 1, 4), "2Dlh": ((2, 1), True, False, 1, 4), "2Dlhb": ((2, 1), True, True, 1, 4),
    "1Q": ((1, 1), True, True, 1, 5), "2Q": ((2, 1), True, True, 2, 11), "Full": ((1, 1), True, True, 4, 25),
}
for _name, (_ar, _kb, _bl, _nq, _nv) in _OM_FULL.items():
    for _v1 in ((False, True) if _name in ("2Dlhb", "1Q", "2Q", "Full") else (False,)):
        _register(TaskSpec(f"MiniGrid-ObstructedMaze-{_name}-v{int(_v1)}",
                           "ObstructedMaze_Full_V1" if _v1 else "ObstructedMaze_Full", 16, 16, 4 * _nv * 36, False,
                           _OM_MISSIONS, gen_obstructedmaze,
                           {"layout": "full", "agent_room": _ar, "key_in_box": _kb, "blocked": _bl,
                            "num_quarters": _nq, "v1": _v1},
                           has_boxes=_kb, success_mode="pickup", door_of_interest="none"))

from .tasks_more import gen_distshift, gen_dynamic_obstacles  # noqa: E402

for _k, _row in ((1, 2), (2, 5)):
    _register(TaskSpec(f"MiniGrid-DistShift{_k}-v0", "DistShiftEnv", 9, 7, 4 * 9 * 7, True,
                       ("get to the green goal square",), gen_distshift, {"strip2_row": _row}))
for _s, _k, _rand in ((5, 2, False), (5, 2, True), (6, 3, False), (6, 3, True), (8, 4, False), (16, 8, False)):
    _register(TaskSpec(f"MiniGrid-Dynamic-Obstacles-{'Random-' if _rand else ''}{_s}x{_s}-v0", "DynamicObstaclesEnv",
                       _s, _s, 4 * _s * _s, True, ("get to the green goal square",), gen_dynamic_obstacles,
                       {"size": _s, "random_start": _rand}, num_actions=3, num_obstacles=_k))


def get_spec(env_id: str) -> TaskSpec:
    if env_id not in _SPECS:
        raise ValueError(f"unsupported MiniGrid id {env_id!r}; supported ids: {', '.join(_SPECS)}")
    return _SPECS[env_id]


def supported_ids() -> tuple[str, ...]:
    return tuple(_SPECS)
