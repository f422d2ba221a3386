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


def get_spec(env_id: str) -> TaskSpec:
    if env_id not in _SPECS:
        raise ValueError(f"unsupported MiniGrid id {env_id!r}; supported ids: {', '.join(_SPECS)}")
    return _SPECS[env_id]


def supported_ids() -> tuple[str, ...]:
    return tuple(_SPECS)
