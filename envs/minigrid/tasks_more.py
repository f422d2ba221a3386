"""Batched layout generators for Farama's MultiRoom, DistShift and Dynamic-Obstacles tasks."""

from __future__ import annotations

import torch

from . import constants as C
from .tasks import TaskSpec, const, object_cells, put_cells, randint, sample_free_cell, walled_grid

# ---------------------------------------------------------------------- MultiRoom
#: attempts drawn per env and round; rounds are repeated on CPU until every env has a layout, and
#: run a fixed number of times elsewhere (no host sync): with N6's per-attempt success rate of about
#: 0.33 (room 0 drawn in the grid), 8 rounds of 16 leave an env without a layout with probability
#: below 1e-20 (it would then get a fixed valid layout)
MULTIROOM_ATTEMPTS = {"cpu": 8, "accel": 16}
MULTIROOM_ROUNDS_ACCEL = 8
_MULTIROOM_MAX_ROUNDS_CPU = 1000
#: use the fixed-rounds (sync-free) path on CPU too (tests of that path)
MULTIROOM_FIXED_ROUNDS_ON_CPU = False
_FALLBACK: dict = {}


def _pick(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``t[i, index[i]]`` for every row ``i``."""
    return t.gather(1, index[:, None]).squeeze(1)


def multiroom_attempts(gen: torch.Generator, m: int, num_rooms: int, max_size: int, W: int, H: int, device):
    """``m`` independent runs of one pass of Farama's ``MultiRoomEnv._gen_grid`` outer loop.

    Room 0 sits at a uniform position in ``[0, W-2)^2``; each next room tries up to 8 times (exit wall
    uniform among the parent's walls other than its entry wall, door uniform on that wall, size
    uniform in ``[4, max_size]^2``, offset uniform so the door is inside the new room's wall) and keeps
    the first try that lies in the grid and does not overlap an earlier room other than its parent.
    The 8 tries are drawn at once and the first valid one is kept, which is the same distribution.

    Returns ``rooms`` int64[m, N, 4] (top x, top y, size x, size y), ``doors`` int64[m, N, 2] (entry
    door of each room; row 0 unused) and ``ok`` bool[m] (all ``N`` rooms placed).
    """
    T = 8
    # room 0: Farama draws the corner in [0, W-2)^2 (both coordinates below width - 2) and the size in
    # [4, max_size]^2, and the attempt fails if the room leaves the grid. Conditioning the whole
    # attempt on success includes that check, so room 0 is drawn directly among the valid
    # (corner, size) pairs: uniform over pairs, i.e. size weighted by its number of valid corners
    sizes = torch.arange(4, max_size + 1, device=device)
    nx = torch.clamp(W - sizes + 1, max=W - 2)  # x0 + sx <= W
    ny = torch.clamp(H - sizes, max=W - 2)  # y0 + sy < H
    ok = torch.ones(m, dtype=torch.bool, device=device)

    def size_and_corner(cnt):
        cdf = cnt.cumsum(0).to(torch.float64)
        u = torch.rand(m, generator=gen, device=device, dtype=torch.float64) * cdf[-1]
        k = torch.searchsorted(cdf, u, right=True).clamp(max=cnt.numel() - 1)
        return sizes[k], randint(gen, 0, cnt[k], m, device)

    sx, tx = size_and_corner(nx)
    sy, ty = size_and_corner(ny)
    rooms = [torch.stack([tx, ty, sx, sy], 1)]
    doors = [torch.zeros(m, 2, dtype=torch.int64, device=device)]
    entry = torch.full((m,), 2, dtype=torch.int64, device=device)
    for _level in range(1, num_rooms):
        p = rooms[-1][:, None, :]  # parent [m, 1, 4]
        ptx, pty, psx, psy = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
        r = randint(gen, 0, 3, m * T, device).view(m, T)
        exit_wall = r + (r >= entry[:, None]).long()
        oy = randint(gen, 1, psy.expand(m, T).reshape(-1) - 1, m * T, device).view(m, T)
        ox = randint(gen, 1, psx.expand(m, T).reshape(-1) - 1, m * T, device).view(m, T)
        dx = torch.where(exit_wall == 0, ptx + psx - 1, torch.where(exit_wall == 2, ptx, ptx + ox))
        dy = torch.where(exit_wall == 1, pty + psy - 1, torch.where(exit_wall == 3, pty, pty + oy))
        e = (exit_wall + 2) % 4  # entry wall of the new room
        nsx = randint(gen, 4, max_size + 1, m * T, device).view(m, T)
        nsy = randint(gen, 4, max_size + 1, m * T, device).view(m, T)
        # offsets along the entry wall: top in [d - size + 2, d), i.e. d - top in [1, size - 2]
        uy = randint(gen, 1, nsy.reshape(-1) - 1, m * T, device).view(m, T)
        ux = randint(gen, 1, nsx.reshape(-1) - 1, m * T, device).view(m, T)
        ntx = torch.where(e == 0, dx - nsx + 1, torch.where(e == 2, dx, dx - ux))
        nty = torch.where(e == 1, dy - nsy + 1, torch.where(e == 3, dy, dy - uy))
        valid = (ntx >= 0) & (nty >= 0) & (ntx + nsx <= W) & (nty + nsy < H)
        for q in rooms[:-1]:
            qtx, qty, qsx, qsy = (q[:, k:k + 1] for k in range(4))
            valid &= (ntx + nsx < qtx) | (qtx + qsx <= ntx) | (nty + nsy < qty) | (qty + qsy <= nty)
        first = valid.long().argmax(1)
        ok = ok & valid.any(1)
        rooms.append(torch.stack([_pick(ntx, first), _pick(nty, first), _pick(nsx, first), _pick(nsy, first)], 1))
        doors.append(torch.stack([_pick(dx, first), _pick(dy, first)], 1))
        entry = _pick(e, first)
    return torch.stack(rooms, 1), torch.stack(doors, 1), ok


def _fallback_layout(num_rooms: int, max_size: int, W: int, H: int, device):
    key = (num_rooms, max_size, W, H, str(device))
    if key not in _FALLBACK:
        g = torch.Generator().manual_seed(0)
        while True:
            rooms, doors, ok = multiroom_attempts(g, 64, num_rooms, max_size, W, H, "cpu")
            if bool(ok.any()):
                i = int(ok.nonzero()[0, 0])
                _FALLBACK[key] = (rooms[i].to(device), doors[i].to(device))
                break
    return _FALLBACK[key]


def gen_multiroom(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    """Farama ``MultiRoomEnv``: a chain of ``N`` rooms joined by closed doors (each a colour other than
    the previous door's), the agent anywhere in the first room, the goal anywhere in the last.

    Farama repeats whole placement attempts until one places all ``N`` rooms; the result is one
    attempt conditioned on success. We draw ``MULTIROOM_ATTEMPTS`` attempts per env at once and keep
    the first successful one.
    """
    N, S = spec.kwargs["num_rooms"], spec.kwargs["max_room_size"]
    H, W = spec.height, spec.width
    dev = torch.device(device)
    host_loop = dev.type == "cpu" and not MULTIROOM_FIXED_ROUNDS_ON_CPU
    K = MULTIROOM_ATTEMPTS["cpu" if host_loop else "accel"]
    rooms = torch.zeros(n, N, 4, dtype=torch.int64, device=dev)
    doors = torch.zeros(n, N, 2, dtype=torch.int64, device=dev)
    pending = torch.ones(n, dtype=torch.bool, device=dev)
    if host_loop:
        for _ in range(_MULTIROOM_MAX_ROUNDS_CPU):
            rows = pending.nonzero().squeeze(1)
            if rows.numel() == 0:
                break
            r, d, ok = multiroom_attempts(gen, rows.numel() * K, N, S, W, H, dev)
            ok = ok.view(-1, K)
            first = ok.long().argmax(1)
            sel = (torch.arange(rows.numel()) * K + first)
            got = ok.any(1)
            rooms[rows[got]] = r[sel[got]]
            doors[rows[got]] = d[sel[got]]
            pending[rows[got]] = False
        if bool(pending.any()):
            raise RuntimeError("MultiRoom placement failed")  # probability ~0 (see MULTIROOM_ATTEMPTS)
    else:
        fr, fd = _fallback_layout(N, S, W, H, dev)
        rooms[:], doors[:] = fr, fd
        for _ in range(MULTIROOM_ROUNDS_ACCEL):
            r, d, ok = multiroom_attempts(gen, n * K, N, S, W, H, dev)
            ok = ok.view(n, K)
            first = ok.long().argmax(1)
            sel = torch.arange(n, device=dev) * K + first
            take = pending & ok.any(1)
            rooms = torch.where(take[:, None, None], r[sel], rooms)
            doors = torch.where(take[:, None, None], d[sel], doors)
            pending = pending & ~take

    ys = torch.arange(H, device=dev).view(1, H, 1)
    xs = torch.arange(W, device=dev).view(1, 1, W)
    wall = torch.zeros(n, H, W, dtype=torch.bool, device=dev)
    for k in range(N):
        tx, ty, sx, sy = (rooms[:, k, c].view(n, 1, 1) for c in range(4))
        inside = (xs >= tx) & (xs <= tx + sx - 1) & (ys >= ty) & (ys <= ty + sy - 1)
        wall |= inside & ((xs == tx) | (xs == tx + sx - 1) | (ys == ty) | (ys == ty + sy - 1))
    grid = torch.where(wall[..., None], const(C.WALL_CELL, dev), const(C.EMPTY_CELL, dev))
    # door colours: the first uniform, each next uniform among the 5 others
    sorted_idx = const(C.SORTED_COLOR_IDX, dev, torch.int64)
    c = randint(gen, 0, 6, n, dev)
    for k in range(1, N):
        if k > 1:
            c = (c + 1 + randint(gen, 0, 5, n, dev)) % 6
        col = sorted_idx[c]
        door = object_cells(C.DOOR, col, C.CLOSED)
        put_cells(grid, doors[:, k], door)

    def inside_cell(room):
        tx, ty, sx, sy = room.unbind(1)
        return torch.stack([tx + 1 + randint(gen, 0, sx - 2, n, dev), ty + 1 + randint(gen, 0, sy - 2, n, dev)], 1)

    pos = inside_cell(rooms[:, 0])
    d = randint(gen, 0, 4, n, dev)
    goal = inside_cell(rooms[:, -1])
    put_cells(grid, goal, C.GOAL_CELL)
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "goal_pos": goal}


# ---------------------------------------------------------------------- DistShift
def gen_distshift(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    """Farama ``DistShiftEnv``: fixed layout, lava strips in row 1 and row ``strip2_row``, goal top right."""
    H, W = spec.height, spec.width
    grid = walled_grid(n, H, W, device)
    goal = const((W - 2, 1), device, torch.int64).expand(n, 2)
    put_cells(grid, goal, C.GOAL_CELL)
    grid[:, 1, 3:W - 3] = const(C.LAVA_CELL, device)
    grid[:, spec.kwargs["strip2_row"], 3:W - 3] = const(C.LAVA_CELL, device)
    pos = const((1, 1), device, torch.int64).expand(n, 2)
    d = torch.zeros(n, dtype=torch.int64, device=device)
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "goal_pos": goal}


# ---------------------------------------------------------------------- Dynamic-Obstacles
def gen_dynamic_obstacles(spec: TaskSpec, n: int, gen: torch.Generator, device) -> dict:
    """Farama ``DynamicObstaclesEnv``: empty room, goal bottom right, agent at (1, 1) facing right (or
    anywhere, random direction, for the ``Random`` ids), ``K`` blue balls on uniform free cells."""
    H, W = spec.height, spec.width
    K = spec.num_obstacles
    grid = walled_grid(n, H, W, device)
    goal = const((W - 2, H - 2), device, torch.int64).expand(n, 2)
    put_cells(grid, goal, C.GOAL_CELL)
    ar = torch.arange(n, device=device)
    free = (grid[..., 0] == C.EMPTY)
    if spec.kwargs.get("random_start", False):
        pos = sample_free_cell(gen, free)
        d = randint(gen, 0, 4, n, device)
    else:
        pos = const((1, 1), device, torch.int64).expand(n, 2)
        d = torch.zeros(n, dtype=torch.int64, device=device)
    free = free.clone()
    free[ar, pos[:, 1], pos[:, 0]] = False
    obst = []
    for _ in range(K):
        xy = sample_free_cell(gen, free)
        free[ar, xy[:, 1], xy[:, 0]] = False
        put_cells(grid, xy, (C.BALL, C.BLUE, 0))
        obst.append(xy)
    return {"grid": grid, "agent_pos": pos, "agent_dir": d, "goal_pos": goal, "obstacle_pos": torch.stack(obst, 1)}
