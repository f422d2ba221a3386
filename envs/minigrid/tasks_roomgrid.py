"""Batched layout generators for Farama's ``RoomGrid`` tasks with several rooms: KeyCorridor and
ObstructedMaze (v0 and v1).

``RoomGrid`` tiles ``num_cols x num_rows`` square rooms of side ``room_size`` (walls shared) and draws,
for every pair of neighbouring rooms, one door cell on the wall between them (uniform over the wall's
inner cells). Tasks then put doors on some of those cells, objects into rooms and the agent into a
room. Each generator below follows the order of Farama's ``_gen_grid`` wherever a later step can
overwrite or depend on an earlier one; independent draws are taken in any order (the distribution of
layouts is what matches, not the random stream).
"""

from __future__ import annotations

import torch

from . import constants as C
from .tasks import TaskSpec, const, object_cells, put_cells, rand_color, randint, sample_free_cell, sample_free_pos_dir

_CACHE: dict = {}


class RoomGridGeometry:
    """Static geometry of a ``num_cols x num_rows`` RoomGrid (cached per shape and device).

    Rooms are numbered ``node = j * num_cols + i`` (column ``i``, row ``j``). Edges (walls between
    neighbouring rooms) are numbered: first the horizontal neighbours ``(i, j) - (i + 1, j)`` row by
    row, then the vertical neighbours ``(i, j) - (i, j + 1)``.
    """

    def __init__(self, room_size: int, num_rows: int, num_cols: int, device):
        S, R, K = room_size, num_rows, num_cols
        self.S, self.R, self.K = S, R, K
        self.H, self.W = (S - 1) * R + 1, (S - 1) * K + 1
        self.device = device
        ea, eb, horiz = [], [], []
        self._edge = {}
        for j in range(R):
            for i in range(K - 1):
                self._edge[(i, j, 0)] = self._edge[(i + 1, j, 2)] = len(ea)
                ea.append(j * K + i), eb.append(j * K + i + 1), horiz.append(True)
        for j in range(R - 1):
            for i in range(K):
                self._edge[(i, j, 1)] = self._edge[(i, j + 1, 3)] = len(ea)
                ea.append(j * K + i), eb.append((j + 1) * K + i), horiz.append(False)
        self.num_edges = len(ea)
        self.edge_a = torch.tensor(ea, dtype=torch.int64, device=device)
        self.edge_b = torch.tensor(eb, dtype=torch.int64, device=device)
        self.horiz = torch.tensor(horiz, dtype=torch.bool, device=device)
        # fixed coordinate of each edge's wall (x of a vertical wall, y of a horizontal one) and the
        # first inner cell along it
        fixed, base = [], []
        for a, h in zip(ea, horiz):
            ai, aj = a % K, a // K
            if h:
                fixed.append((ai + 1) * (S - 1)), base.append(aj * (S - 1))
            else:
                fixed.append((aj + 1) * (S - 1)), base.append(ai * (S - 1))
        self.edge_fixed = torch.tensor(fixed, dtype=torch.int64, device=device)
        self.edge_base = torch.tensor(base, dtype=torch.int64, device=device)
        V = R * K
        self.onehot_a = torch.nn.functional.one_hot(self.edge_a, V).float()  # [E, V]
        self.onehot_b = torch.nn.functional.one_hot(self.edge_b, V).float()
        g = torch.empty(self.H, self.W, 3, dtype=torch.uint8)
        g[:] = torch.tensor(C.EMPTY_CELL, dtype=torch.uint8)
        ys = torch.arange(self.H).view(-1, 1)
        xs = torch.arange(self.W).view(1, -1)
        wall = (xs % (S - 1) == 0) | (ys % (S - 1) == 0)
        g[wall] = torch.tensor(C.WALL_CELL, dtype=torch.uint8)
        self.walls = g.to(device)

    @classmethod
    def get(cls, room_size: int, num_rows: int, num_cols: int, device) -> "RoomGridGeometry":
        key = (room_size, num_rows, num_cols, str(device))
        if key not in _CACHE:
            _CACHE[key] = cls(room_size, num_rows, num_cols, device)
        return _CACHE[key]

    def edge(self, i: int, j: int, k: int) -> int:
        """Edge index of wall ``k`` (0 right, 1 down, 2 left, 3 up) of room ``(i, j)``."""
        return self._edge[(i, j, k)]

    def room_rect(self, i: int, j: int, interior: bool = False) -> torch.Tensor:
        """bool[H, W] mask of room ``(i, j)``: its rectangle with walls (``place_obj``'s region) or inside only."""
        key = ("rect", self.S, self.R, self.K, i, j, interior, str(self.device))
        m = _CACHE.get(key)
        if m is None:
            S, d = self.S, int(interior)
            ys = torch.arange(self.H, device=self.device).view(-1, 1)
            xs = torch.arange(self.W, device=self.device).view(1, -1)
            m = ((xs >= i * (S - 1) + d) & (xs <= (i + 1) * (S - 1) - d)
                 & (ys >= j * (S - 1) + d) & (ys <= (j + 1) * (S - 1) - d))
            _CACHE[key] = m
        return m

    def grid(self, n: int) -> torch.Tensor:
        return self.walls.expand(n, self.H, self.W, 3).clone()

    def sample_door_cells(self, gen: torch.Generator, n: int) -> torch.Tensor:
        """``RoomGrid._gen_grid``'s door cell of every wall: int64[n, E, 2] (x, y), uniform over the wall's inner cells."""
        E = self.num_edges
        off = randint(gen, 1, self.S - 1, n * E, self.device).view(n, E)
        along = self.edge_base + off
        fixed = self.edge_fixed.expand(n, E)
        x = torch.where(self.horiz, fixed, along)
        y = torch.where(self.horiz, along, fixed)
        return torch.stack([x, y], -1)

    def reach(self, conn: torch.Tensor, start: int) -> torch.Tensor:
        """Rooms reachable from room ``start`` through connected walls ``conn`` (bool[n, E]) -> bool[n, V]."""
        n = conn.shape[0]
        V = self.R * self.K
        adj = torch.einsum("ne,ei,ej->nij", conn.float(), self.onehot_a, self.onehot_b)
        adj = adj + adj.transpose(1, 2)
        r = torch.zeros(n, V, device=conn.device)
        r[:, start] = 1.0
        for _ in range(V - 1):
            r = ((r + torch.bmm(r.unsqueeze(1), adj).squeeze(1)) > 0).float()
        return r > 0


def _near(geo: RoomGridGeometry, x: int, y: int) -> torch.Tensor:
    """Cells ``reject_next_to`` refuses around the provisional agent position ``(x, y)`` (Manhattan < 2)."""
    ys = torch.arange(geo.H, device=geo.device).view(-1, 1)
    xs = torch.arange(geo.W, device=geo.device).view(1, -1)
    return (xs - x).abs() + (ys - y).abs() < 2


def _place_in_room(gen, grid: torch.Tensor, geo: RoomGridGeometry, i: int, j: int, near: torch.Tensor) -> torch.Tensor:
    """``RoomGrid.place_in_room``: uniform over the empty cells of room ``(i, j)``'s rectangle that are
    not next to the provisional agent position -> int64[n, 2]."""
    free = (grid[..., 0] == C.EMPTY) & (geo.room_rect(i, j) & ~near)
    return sample_free_cell(gen, free)


# ---------------------------------------------------------------------- KeyCorridor
def gen_keycorridor(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    """Farama ``KeyCorridorEnv``: 3 columns of rooms, the middle column an open corridor, a locked
    door into a room on the right holding the ball, the key in a room on the left, then
    ``connect_all`` adds unlocked doors until every room is reachable."""
    S, R = spec.kwargs["room_size"], spec.kwargs["num_rows"]
    geo = RoomGridGeometry.get(S, R, 3, device)
    E = geo.num_edges
    ar = torch.arange(n, device=device)
    grid = geo.grid(n)
    door_xy = geo.sample_door_cells(gen, n)
    conn = torch.zeros(n, E, dtype=torch.bool, device=device)
    # remove_wall(1, j, 3): the middle column becomes one corridor
    for j in range(1, R):
        grid[:, j * (S - 1), (S - 1) + 1:2 * (S - 1)] = const(C.EMPTY_CELL, device)
        conn[:, geo.edge(1, j, 3)] = True
    # locked door between (1, r) and (2, r); the ball behind it; the key in a room of column 0
    room_idx = randint(gen, 0, R, n, device)
    e_lock = const(tuple(geo.edge(2, j, 2) for j in range(R)), device, torch.int64)[room_idx]
    lock_xy = door_xy[ar, e_lock]
    door_color = rand_color(gen, n, device)
    put_cells(grid, lock_xy, object_cells(C.DOOR, door_color, C.LOCKED))
    conn[ar, e_lock] = True
    ball_color = rand_color(gen, n, device)
    inner = S - 2
    k = randint(gen, 0, inner * inner, n, device)
    ball_xy = torch.stack([2 * (S - 1) + 1 + k % inner, room_idx * (S - 1) + 1 + k // inner], 1)
    put_cells(grid, ball_xy, object_cells(C.BALL, ball_color))
    key_row = randint(gen, 0, R, n, device)
    k = randint(gen, 0, inner * inner, n, device)
    key_xy = torch.stack([1 + k % inner, key_row * (S - 1) + 1 + k // inner], 1)
    put_cells(grid, key_xy, object_cells(C.KEY, door_color))
    # place_agent(1, R // 2): (cell, direction) with nothing but floor or wall in front
    pos, d = sample_free_pos_dir(gen, grid, geo.room_rect(1, R // 2))
    # connect_all: random walls (uniform over those without a door whose rooms are not locked) get an
    # unlocked door until all rooms are reachable; each pass adds one door, so E passes suffice
    locked_room = 2 + 3 * room_idx
    blocked = (geo.edge_a == locked_room[:, None]) | (geo.edge_b == locked_room[:, None])
    added = torch.zeros(n, E, dtype=torch.bool, device=device)
    colors = torch.zeros(n, E, dtype=torch.int64, device=device)
    start = (R // 2) * 3 + 1
    for _ in range(E):
        done = geo.reach(conn, start).all(1)
        valid = ~conn & ~blocked
        keys = torch.where(valid, torch.rand(n, E, generator=gen, device=device), -1.0)
        e = keys.argmax(1)
        add = ~done & valid.any(1)
        conn[ar, e] |= add
        added[ar, e] |= add
        colors[ar, e] = torch.where(add, rand_color(gen, n, device), colors[ar, e])
    for e in range(E):
        put_cells(grid, door_xy[:, e], object_cells(C.DOOR, colors[:, e], C.CLOSED), mask=added[:, e])
    sorted_pos = const(tuple(C.SORTED_COLOR_IDX.index(c) for c in range(6)), device, torch.int64)
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "door_pos": lock_xy,
            "target": object_cells(C.BALL, ball_color), "mission": sorted_pos[ball_color]}


# ---------------------------------------------------------------------- ObstructedMaze
_SIDE_ROOMS = ((2, 1), (1, 2), (0, 1), (1, 0))
_CORNERS = ((2, 0), (2, 2), (0, 2), (0, 0))
# Farama: ball to find COLOR_NAMES[0], blocking balls COLOR_NAMES[1], boxes COLOR_NAMES[2] (sorted names)
_FIND, _BLOCK, _BOXC = C.SORTED_COLOR_IDX[0], C.SORTED_COLOR_IDX[1], C.SORTED_COLOR_IDX[2]


def gen_obstructedmaze(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    """Farama ``ObstructedMaze_1Dlhb`` (2 x 1 rooms), ``ObstructedMaze_Full`` and ``ObstructedMaze_Full_V1``
    (3 x 3 rooms): locked doors, their keys (optionally hidden in grey boxes) in the room on this side,
    doors optionally blocked by a green ball in front, a blue ball to pick up.

    v0 places each key right after its door, so the blocking ball of the side room's second door can
    overwrite the first key (or its box); v1 adds both doors and balls before the keys.
    """
    kw = spec.kwargs
    full = kw["layout"] != "1Dlhb"
    cols, rows = (3, 3) if full else (2, 1)
    geo = RoomGridGeometry.get(6, rows, cols, device)
    key_in_box, blocked, v1 = kw["key_in_box"], kw["blocked"], kw.get("v1", False)
    grid = geo.grid(n)
    contains = const(C.EMPTY_CELL, device).expand(n, geo.H, geo.W, 3).clone()
    door_xy = geo.sample_door_cells(gen, n)
    # door_colors = _rand_subset(COLOR_NAMES, 6): a uniform random permutation of the colours
    perm = torch.rand(n, 6, generator=gen, device=device).argsort(1)
    door_colors = const(C.SORTED_COLOR_IDX, device, torch.int64)[perm]  # [n, 6] COLOR_TO_IDX
    near = _near(geo, (cols // 2) * 5 + 3, (rows // 2) * 5 + 3)
    empty = const(C.EMPTY_CELL, device)

    def add_door(i, j, k, color, locked):
        xy = door_xy[:, geo.edge(i, j, k)]
        put_cells(grid, xy, object_cells(C.DOOR, color, C.LOCKED if locked else C.CLOSED))
        return xy

    def block(xy, k):
        dx, dy = C.DIR_TO_VEC[k]
        bxy = xy - const((dx, dy), device, torch.int64)
        put_cells(grid, bxy, (C.BALL, _BLOCK, 0))
        put_cells(contains, bxy, empty)  # a box there is replaced, contents and all

    def add_key(i, j, color):
        xy = _place_in_room(gen, grid, geo, i, j, near)
        key = object_cells(C.KEY, color)
        if key_in_box:
            put_cells(grid, xy, (C.BOX, _BOXC, 0))
            put_cells(contains, xy, key)
        else:
            put_cells(grid, xy, key)

    if not full:
        xy = add_door(0, 0, 0, door_colors[:, 0], True)
        if blocked:
            block(xy, 0)
        add_key(0, 0, door_colors[:, 0])
        ball_xy = _place_in_room(gen, grid, geo, 1, 0, near)
        put_cells(grid, ball_xy, (C.BALL, _FIND, 0))
        agent_room = (0, 0)
    else:
        nq = kw["num_quarters"]
        for q in range(nq):
            si, sj = _SIDE_ROOMS[q]
            add_door(1, 1, q, door_colors[:, q], False)
            sides = [((q + k) % 4, door_colors[:, (q + k) % 6]) for k in (-1, 1)]
            for k, color in sides:
                xy = add_door(si, sj, k, color, True)
                if blocked:
                    block(xy, k)
                if not v1:
                    add_key(si, sj, color)
            if v1:
                for _, color in sides:
                    add_key(si, sj, color)
        corner = randint(gen, 0, nq, n, device)
        ball_xy = torch.zeros(n, 2, dtype=torch.int64, device=device)
        for c in range(nq):  # one candidate per corner room, then select
            xy = _place_in_room(gen, grid, geo, *_CORNERS[c], near)
            ball_xy = torch.where((corner == c)[:, None], xy, ball_xy)
        put_cells(grid, ball_xy, (C.BALL, _FIND, 0))
        agent_room = kw["agent_room"]
    pos, d = sample_free_pos_dir(gen, grid, geo.room_rect(*agent_room))
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "contains": contains,
            "target": const((C.BALL, _FIND, 0), device).expand(n, 3)}
