"""MiniGrid reward terms: helper sources, the term library read from the env context, and the substitution values.

Distances are normalised by W + H; "progress" terms are potential-based shaping
``gamma * phi(next_state) - phi(state)``, set to 0 where an episode boundary lies between the two
states (``next_state.step_count <= state.step_count``). Helper sources use :class:`string.Template`
placeholders (``$norm`` = W + H, ``$key``, ``$lava``, ... ids from the context) filled by
:func:`minigrid_env`.

Everything env-specific is read once, when a program is rendered, from what the env says about itself
(kept on the :class:`~rewards.llm.context.EnvContext`): object and door-state ids from
``task_info().grid``, the grid size from ``task_info().grid_size``, the success rule from
``task_info().success_kind``, the step of each heading from ``state_spec()["agent_dir"].codes``, the
action ids from ``task_info().action_meanings``. The generated code holds them as literals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from rewards.llm.context import EnvContext, direction_vectors
from rewards.llm.search.offline.terms import TermDef

# Helper sources use string.Template: $norm (W + H), $key, $lava, ... (ids from the context), $dir_steps (the
# (dx, dy) of each agent_dir code).
MG_HELPERS: dict[str, tuple[tuple[str, ...], str]] = {
    # name: (helpers it needs, source)
    "_metric": ((), '''
def _metric(dx, dy):
    """$metric_name length of the offsets (dx, dy), float32 tensors of one shape."""
    return $metric_expr
'''),
    "_dist": (("_metric",), '''
def _dist(a, b):
    """Distance between cells, int64[..., 2] (x, y) each -> float32[...]."""
    d = (a - b).to(torch.float32)
    return _metric(d[..., 0], d[..., 1])
'''),
    "_front_cell": ((), '''
def _front_cell(state):
    """The cell in front of the agent: (x, y) int64[N, 2] and its (type, colour, state) int64[N, 3]."""
    pos = state["agent_pos"]
    step = torch.tensor($dir_steps, dtype=pos.dtype, device=pos.device)
    front = pos + step[state["agent_dir"]]
    grid = state["grid"]
    x = front[:, 0].clamp(0, grid.shape[2] - 1)
    y = front[:, 1].clamp(0, grid.shape[1] - 1)
    rows = torch.arange(pos.shape[0], device=pos.device)
    return front, grid[rows, y, x].long()
'''),
    "_nearest": (("_metric",), '''
def _nearest(state, obj_type, colour=None):
    """Distance from the agent to the nearest grid cell holding `obj_type` (an int or int64[N]) of
    `colour` (None = any, or int64[N]): float32[N] (0 where there is none) and bool[N] (one exists)."""
    grid = state["grid"]
    n, h, w = grid.shape[0], grid.shape[1], grid.shape[2]
    pos = state["agent_pos"].to(torch.float32)
    dx = torch.arange(w, device=grid.device, dtype=torch.float32).view(1, 1, w) - pos[:, 0].view(n, 1, 1)
    dy = torch.arange(h, device=grid.device, dtype=torch.float32).view(1, h, 1) - pos[:, 1].view(n, 1, 1)
    d = _metric(dx.expand(n, h, w), dy.expand(n, h, w)).reshape(n, h * w)
    if isinstance(obj_type, torch.Tensor):
        obj_type = obj_type.long().view(n, 1, 1)
    mask = grid[..., 0].long() == obj_type
    if colour is not None:
        mask = mask & (grid[..., 1].long() == colour.long().view(n, 1, 1))
    mask = mask.reshape(n, h * w)
    found = mask.any(1)
    d = torch.where(mask, d, torch.full_like(d, float(4 * (h + w)))).min(1).values
    return torch.where(found, d, torch.zeros_like(d)), found
'''),
    "_same_episode": ((), '''
def _same_episode(state, next_state):
    """bool[N]: next_state continues the episode of state (False where an auto-reset lies between)."""
    return next_state["step_count"] > state["step_count"]
'''),
    "_phi_goal": (("_dist",), '''
def _phi_goal(state):
    """Potential float32[N]: minus the distance to the goal / (W + H); 0 where the task has no goal."""
    goal = state["goal_pos"]
    d = _dist(state["agent_pos"], goal) / $norm
    return torch.where(goal[:, 0] >= 0, -d, torch.zeros_like(d))
'''),
    "_phi_door": (("_dist",), '''
def _phi_door(state):
    """Potential float32[N]: minus the distance to the door / (W + H) while it is not open, else 0."""
    d = _dist(state["agent_pos"], state["door_pos"]) / $norm
    shut = state["door_state"] > $open
    return torch.where(shut, -d, torch.zeros_like(d))
'''),
    "_phi_key": (("_nearest",), '''
def _phi_key(state):
    """Potential float32[N]: minus the distance to the nearest key / (W + H) while one is needed, else 0."""
    d, found = _nearest(state, $key)
    need = found & (state["carrying"][:, 0].long() != $key)$door_not_open
    return torch.where(need, -d / $norm, torch.zeros_like(d))
'''),
    "_phi_target": (("_nearest",), '''
def _phi_target(state):
    """Potential float32[N]: minus the distance to the nearest object matching `target` / (W + H)."""
    target = state["target"].long()
    d, found = _nearest(state, target[:, 0], target[:, 1])
    active = found & (target[:, 0] != $empty)
    return torch.where(active, -d / $norm, torch.zeros_like(d))
'''),
    "_phi_subgoal": (("_nearest", "_dist", "$final_phi"), '''
def _phi_subgoal(state):
    """Staged potential float32[N] over key -> door -> $final_name: (stage - distance to the stage's
    sub-goal / (W + H)) / 3, stage 0 = fetch the key, 1 = go to the closed door, 2 = final target."""
    key_d, key_found = _nearest(state, $key)
    carrying_key = state["carrying"][:, 0].long() == $key
    locked = state["door_state"] == $locked
    shut = state["door_state"] > $open
    need_key = locked & key_found & ~carrying_key
    door_d = _dist(state["agent_pos"], state["door_pos"]) / $norm
    final_d = -$final_phi(state)
    stage = torch.where(need_key, 0.0, torch.where(shut, 1.0, 2.0))
    d = torch.where(need_key, key_d / $norm, torch.where(shut, door_d, final_d))
    return (stage - d) / 3.0
'''),
    "_opens_door": (("_front_cell",), '''
def _opens_door(state, action):
    """bool[N]: `toggle` on the door of interest that opens it (closed, or locked with a key of its colour)."""
    front, cell = _front_cell(state)
    at_door = (front == state["door_pos"]).all(-1) & (cell[:, 0] == $door)
    carry = state["carrying"].long()
    has_key = (carry[:, 0] == $key) & (carry[:, 1] == cell[:, 1])
    opens = (cell[:, 2] == $closed) | ((cell[:, 2] == $locked) & has_key)
    return (action == $toggle) & at_door & opens
'''),
}


def success_lines(env: dict[str, Any]) -> list[str]:
    mode = env["success_mode"]
    if mode == "unlock" and env["has_door_keys"]:
        return ["t_success = _opens_door(state, action).float()"]
    if mode == "pickup" and env["has_target_key"]:
        return [
            "front, cell = _front_cell(state)",
            "target = state['target'].long()",
            "hand_empty = state['carrying'][:, 0].long() == $empty",
            "got = (cell[:, 0] == target[:, 0]) & (cell[:, 1] == target[:, 1])",
            "t_success = ((action == $pickup) & hand_empty & got).float()",
        ]
    if env["has_goal_key"]:
        return [
            "front, cell = _front_cell(state)",
            "goal = state['goal_pos']",
            "t_success = ((action == $forward) & (front == goal).all(-1) & (goal[:, 0] >= 0)).float()",
        ]
    return ["t_success = torch.zeros(action.shape[0], device=action.device)"]


def success_helpers(env: dict[str, Any]) -> tuple[str, ...]:
    mode = env["success_mode"]
    if mode == "unlock" and env["has_door_keys"]:
        return ("_opens_door",)
    if (mode == "pickup" and env["has_target_key"]) or env["has_goal_key"]:
        return ("_front_cell",)
    return ()


def _progress(phi: str) -> Callable[[dict[str, Any]], list[str]]:
    def lines(env: dict[str, Any]) -> list[str]:
        out = [f"shaping = $gamma * {phi}(next_state) - {phi}(state)"]
        if env["has_step_count"]:
            out.append("shaping = torch.where(_same_episode(state, next_state), shaping, torch.zeros_like(shaping))")
        return out + ["t_{name} = shaping"]
    return lines


def minigrid_terms(ctx: EnvContext) -> list[TermDef]:
    keys = set(ctx.state_keys)
    f = ctx.facts
    has_grid = "grid" in keys and "agent_dir" in keys and direction_vectors(ctx.fields.get("agent_dir")) is not None
    has_goal = "goal_pos" in keys and bool(f.get("has_goal"))
    has_door = {"door_pos", "door_state"} <= keys and bool(f.get("has_door"))
    has_key = has_grid and bool(f.get("has_key")) and "carrying" in keys
    has_target = has_grid and "target" in keys and bool(f.get("has_target"))
    step = ("_same_episode",) if "step_count" in keys else ()
    terms: list[TermDef] = []
    terms.append(TermDef("success", 1.0, "1 when the action accomplishes the task (the sparse task reward)",
                         success_lines, ("$success_helpers",), mandatory=True))
    if has_door and has_key and (has_goal or has_target):
        final = "_phi_goal" if has_goal else "_phi_target"
        terms.append(TermDef("subgoal_progress", 1.0, "progress along key -> door -> "
                             + ("goal" if has_goal else "target") + " (staged potential)",
                             _progress("_phi_subgoal"), ("_phi_subgoal", final) + step, uses_metric=True))
    progress_terms = (  # (available, name, potential helper, doc), in priority order
        (has_goal, "goal_progress", "_phi_goal", "progress toward the goal cell (potential-based)"),
        (has_target, "target_progress", "_phi_target", "progress toward the target object (potential-based)"),
        (has_key, "key_progress", "_phi_key", "progress toward the key while it is needed (potential-based)"),
        (has_door, "door_progress", "_phi_door", "progress toward the closed door (potential-based)"),
    )
    for available, name, phi, doc in progress_terms:
        if available:
            terms.append(TermDef(name, 1.0, doc, _progress(phi), (phi,) + step, uses_metric=True))
    if has_key:
        lines = [
            "front, cell = _front_cell(state)",
            "hand_empty = state['carrying'][:, 0].long() == $empty",
            "t_key_pickup = (action == $pickup) & hand_empty & (cell[:, 0] == $key)",
        ]
        if has_door:
            lines.append("t_key_pickup = t_key_pickup & (state['door_state'] != $open)")
        lines.append("t_key_pickup = t_key_pickup.float()")
        terms.append(TermDef("key_pickup", 0.3, "1 when picking up a key the door still needs",
                             lambda env, _l=lines: list(_l), ("_front_cell",)))
    if has_door and has_grid and "carrying" in keys and ctx.task.success_kind != "unlock":
        terms.append(TermDef("door_open", 0.3, "1 when opening the door of interest",
                             lambda env: ["t_door_open = _opens_door(state, action).float()"], ("_opens_door",)))
    if has_goal:
        lines = ["t_goal_dist = _phi_goal(next_state)"]
        if "step_count" in keys:
            lines.append("t_goal_dist = torch.where(_same_episode(state, next_state), t_goal_dist, "
                         "torch.zeros_like(t_goal_dist))")
        terms.append(TermDef("goal_dist", 0.05, "minus the distance to the goal / (W + H) after the step",
                             lambda env, _l=lines: list(_l), ("_phi_goal",) + step, uses_metric=True))
    terms.append(TermDef("step_penalty", 0.01, "-1 per step (prefer short episodes)",
                         lambda env: ["t_step_penalty = -torch.ones(action.shape[0], device=action.device)"]))
    if has_grid and bool(f.get("has_lava")):
        terms.append(TermDef("lava_penalty", 1.0, "-1 for stepping into lava", lambda env: [
            "front, cell = _front_cell(state)",
            "t_lava_penalty = -((action == $forward) & (cell[:, 0] == $lava)).float()",
        ], ("_front_cell",)))
    if has_grid:
        terms.append(TermDef("bump_penalty", 0.01, "-1 for moving forward into a cell that blocks the move",
                             lambda env: [
                                 "front, cell = _front_cell(state)",
                                 "kind = cell[:, 0]",
                                 "passable = (kind == $empty) | (kind == $goal) | (kind == $floor) | (kind == $lava)"
                                 " | ((kind == $door) & (cell[:, 2] == $open))",
                                 "t_bump_penalty = -((action == $forward) & ~passable).float()",
                             ], ("_front_cell",)))
    return terms


def minigrid_env(ctx: EnvContext, options: Mapping[str, Any]) -> dict[str, Any]:
    """The substitution values of a MiniGrid program: ids, sizes and options as source literals.

    An id the env does not define (no such object, door state or action) is ``-1``, which never matches.
    """
    f = ctx.facts
    task = ctx.task
    grid = task.grid
    ids = {name: i for i, name in enumerate(grid.objects)} if grid is not None else {}
    ds = {name: i for i, name in enumerate(grid.states)} if grid is not None else {}
    open_state = grid.open_state if grid is not None else -1
    names = list(f.get("action_names") or [])
    w, h = task.grid_size or (1, 1)
    steps = direction_vectors(ctx.fields.get("agent_dir")) or []
    keys = set(ctx.state_keys)
    metric = options.get("metric", "l1")
    env: dict[str, Any] = {
        "norm": f"{float(w + h)!r}",
        "gamma": repr(float(options.get("gamma", 0.99))),
        "metric_name": "Manhattan" if metric == "l1" else "Euclidean",
        "metric_expr": "dx.abs() + dy.abs()" if metric == "l1" else "torch.sqrt(dx * dx + dy * dy)",
        "open": open_state, "closed": ds.get("closed", -1), "locked": ds.get("locked", -1),
        "dir_steps": "[" + ", ".join(f"[{dx}, {dy}]" for dx, dy in steps) + "]",
        "success_mode": task.success_kind,
        "has_step_count": "step_count" in keys,
        "has_goal_key": "goal_pos" in keys and "grid" in keys,
        "has_target_key": "target" in keys and "grid" in keys and "carrying" in keys,
        "has_door_keys": {"door_pos", "door_state", "grid", "carrying"} <= keys,
        "door_not_open": " & (state[\"door_state\"] != %d)" % open_state if "door_state" in keys else "",
        "final_phi": "_phi_goal" if (f.get("has_goal") and "goal_pos" in keys) else "_phi_target",
        "final_name": "goal" if (f.get("has_goal") and "goal_pos" in keys) else "target",
    }
    for name in ("empty", "wall", "floor", "door", "key", "ball", "box", "goal", "lava"):
        env[name] = ids.get(name, -1)
    for i, n in enumerate(names):
        env[n] = i
    for n in ("left", "right", "forward", "pickup", "drop", "toggle", "done"):
        env.setdefault(n, -1)  # an action the env lacks never matches
    return env
