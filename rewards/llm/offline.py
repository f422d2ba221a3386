"""The offline proposer (``llm=offline``): a program-search baseline that writes reward code without a model.

:class:`OfflineProposer` is a real baseline for the reward search, not an imitation of a language
model: it builds reward programs from a fixed library of reward *terms* chosen from the same
:class:`~rewards.llm.context.EnvContext` a model sees, and improves them from the same reflection
statistics a model would get, with explicit rules. Its answers are markdown replies (a short
rationale and one fenced Python block), so the search loop extracts code from them exactly as it does
from a model's replies.

Terms (each is an unweighted float32[N] quantity; only those the state supports are offered):

MiniGrid (distances are normalised by W + H; "progress" terms are potential-based shaping
``gamma * phi(next_state) - phi(state)``, set to 0 where an episode boundary lies between the two
states, i.e. ``next_state.step_count <= state.step_count``):

* ``success``          1 when the action accomplishes the task: ``forward`` onto the goal cell,
  ``toggle`` that opens the door of interest, or ``pickup`` of the target object (mandatory; events are
  judged from ``state`` and ``action``, so they hold even when ``next_state`` is already reset);
* ``goal_progress`` / ``goal_dist``   progress toward / minus the distance to ``goal_pos``;
* ``door_progress``    progress toward ``door_pos`` while the door is not open;
* ``key_progress``     progress toward the nearest key on the grid while no key is carried (and the door is
  not open);
* ``target_progress``  progress toward the nearest object matching ``target``;
* ``subgoal_progress`` staged potential over key -> door -> goal / target;
* ``key_pickup`` / ``door_open``      1 on picking up a key (door not yet open) / opening the door;
* ``step_penalty`` (-1 per step), ``lava_penalty`` (-1 for stepping into lava), ``bump_penalty`` (-1 for
  ``forward`` into a cell that blocks it).

MuJoCo: ``forward_velocity`` (root x velocity, mandatory), ``ctrl_cost`` (minus the squared action),
``height`` (minus the squared deviation of the root height from its initial value), ``upright``
(minus the squared root pitch, or the tilt of a free root), ``alive`` (1 per step, only where the env
terminates on unhealthy states), ``joint_velocity`` (minus the mean squared joint velocity).

A program is a weighted sum ``reward = sum_t w_t * term_t``; the components dict holds the *weighted*
terms (they sum to the reward). Weights and options are stored in the code's header as JSON
(``# terms: {...}``, ``# options: {...}``), so mutation reads them back without parsing Python.

Initial proposals (``reflection=None``): every program has the mandatory terms plus a random subset
of the optional ones (size 1 .. ``max_terms`` - #mandatory); candidate ``i`` is guaranteed the
``i``-th optional term (in priority order, progress terms first), so K candidates cover the library;
each weight is ``base_weight * weight_scale ** u`` with ``u ~ U(-1, 1)``; the distance metric
(Manhattan or Euclidean) is drawn per program. Candidates are pairwise distinct.

Mutation (``reflection`` given), in this order:

1. Parents: the reflected candidates with a ``# terms`` header and no error, ranked by ``fitness``
   (missing fitness ranks last); the best ``num_parents`` are kept. Without parents, all proposals are
   fresh initial samples.
2. Rebalancing from the component statistics (magnitude = mean over the recorded points of
   ``|mean|``; a component is *active* if any recorded ``min``/``max`` is nonzero). Mandatory terms
   anchor the scale and are never rescaled or dropped. An optional term that is never active is
   dropped. A term whose magnitude exceeds ``dominance`` x the median magnitude of the other active
   terms is *dominant*: its weight is scaled by ``dominance * median / magnitude`` clipped to
   [0.1, 0.5], and it ends at most half its parent's weight. A term below ``vanish`` x that median is
   *vanishing*: scaled by ``vanish * median / magnitude`` clipped to [2, 10], ending at least twice its
   parent's weight.
3. The first proposal (the elite) is the best parent after rebalancing only. The others take parents
   in turn, are rebalanced, then every weight is multiplied by ``exp(g)``, ``g ~ N(0, (ln
   weight_scale / 2)^2)`` (the rebalancing bounds of step 2 still hold afterwards), with probability
   ``p_add`` an unused term is added (up to ``max_terms``), with probability ``p_drop`` a random
   optional term that is not vanishing is dropped, and with probability ``p_metric`` the distance
   metric flips.
4. When no parent has a positive fitness (no success signal yet), the second half of the proposals are
   fresh initial samples, to explore other term sets.
5. Proposals are pairwise distinct and differ from every reflected program (a duplicate is perturbed
   again).

Everything is deterministic given ``(seed, rng_seed)``.
"""

from __future__ import annotations

import json
import math
import random
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from .context import EnvContext

__all__ = ["OfflineProposer", "Program", "TermDef", "candidate_terms", "parse_program", "render_program"]

_HEADER = "# Reward program from the offline proposer (program search over reward terms; no language model)."
_TERMS_RE = re.compile(r"^#\s*terms:\s*(\{.*\})\s*$", re.M)
_OPTIONS_RE = re.compile(r"^#\s*options:\s*(\{.*\})\s*$", re.M)


@dataclass
class Program:
    """A reward program: term name -> weight, and options (``metric``: ``"l1"``/``"l2"``, ``gamma``)."""

    terms: dict[str, float]
    options: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        """Canonical text used to tell programs apart (weights at 3 significant digits)."""
        return json.dumps({"t": {k: _sig(v) for k, v in sorted(self.terms.items())},
                           "o": dict(sorted(self.options.items()))}, sort_keys=True)


@dataclass(frozen=True)
class TermDef:
    """One reward term.

    Attributes:
        name: component name in the generated code.
        base_weight: centre of the weight distribution.
        doc: what the term measures (used in the rationale and as a code comment).
        lines: function ``(env) -> list of code lines`` computing ``t_<name>`` (unweighted, float32[N])
            inside ``compute_reward``; ``env`` holds the substitution values of the context.
        helpers: names of helper functions the lines call.
        mandatory: part of every program.
        uses_metric: depends on the distance metric option.
    """

    name: str
    base_weight: float
    doc: str
    lines: Callable[[dict[str, Any]], list[str]]
    helpers: tuple[str, ...] = ()
    mandatory: bool = False
    uses_metric: bool = False


def _sig(x: float, digits: int = 3, mode: str = "nearest") -> float:
    """``x`` rounded to ``digits`` significant digits (``mode``: ``"nearest"``, ``"down"`` or ``"up"`` in
    magnitude)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    if mode == "nearest":
        return float(f"{x:.{digits}g}")
    unit = 10.0 ** (math.floor(math.log10(abs(x))) - digits + 1)
    q = abs(x) / unit
    q = math.floor(q + 1e-9) if mode == "down" else math.ceil(q - 1e-9)
    return math.copysign(float(f"{q * unit:.{digits + 2}g}"), x)


# ------------------------------------------------------------------------------ MiniGrid code pieces
# Helper sources use string.Template: $norm (W + H), $key, $lava, ... (ids from the context).
_MG_HELPERS: dict[str, tuple[tuple[str, ...], str]] = {
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
    step = torch.tensor([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=pos.dtype, device=pos.device)
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


def _mg_success_lines(env: dict[str, Any]) -> list[str]:
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


def _mg_success_helpers(env: dict[str, Any]) -> tuple[str, ...]:
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


def _minigrid_terms(ctx: EnvContext) -> list[TermDef]:
    keys = set(ctx.state_keys)
    f = ctx.facts
    has_grid = "grid" in keys and "agent_dir" in keys
    has_goal = "goal_pos" in keys and bool(f.get("has_goal"))
    has_door = {"door_pos", "door_state"} <= keys and bool(f.get("has_door"))
    has_key = has_grid and bool(f.get("has_key")) and "carrying" in keys
    has_target = has_grid and "target" in keys and bool(f.get("has_target"))
    step = ("_same_episode",) if "step_count" in keys else ()
    terms: list[TermDef] = []
    terms.append(TermDef("success", 1.0, "1 when the action accomplishes the task (the sparse task reward)",
                         _mg_success_lines, ("$success_helpers",), mandatory=True))
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
    if has_door and has_grid and "carrying" in keys and ctx.facts.get("success_mode") != "unlock":
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


def _minigrid_env(ctx: EnvContext, options: Mapping[str, Any]) -> dict[str, Any]:
    f = ctx.facts
    ids = dict(f.get("object_ids") or {})
    ds = dict(f.get("door_state_ids") or {"open": 0, "closed": 1, "locked": 2})
    names = list(f.get("action_names") or ["left", "right", "forward", "pickup", "drop", "toggle", "done"])
    w, h = (f.get("grid_size") or [1, 1])
    keys = set(ctx.state_keys)
    metric = options.get("metric", "l1")
    env: dict[str, Any] = {
        "norm": f"{float(w + h)!r}",
        "gamma": repr(float(options.get("gamma", 0.99))),
        "metric_name": "Manhattan" if metric == "l1" else "Euclidean",
        "metric_expr": "dx.abs() + dy.abs()" if metric == "l1" else "torch.sqrt(dx * dx + dy * dy)",
        "open": ds["open"], "closed": ds["closed"], "locked": ds["locked"],
        "success_mode": f.get("success_mode", "goal"),
        "has_step_count": "step_count" in keys,
        "has_goal_key": "goal_pos" in keys and "grid" in keys,
        "has_target_key": "target" in keys and "grid" in keys and "carrying" in keys,
        "has_door_keys": {"door_pos", "door_state", "grid", "carrying"} <= keys,
        "door_not_open": " & (state[\"door_state\"] != %d)" % ds["open"] if "door_state" in keys else "",
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


# -------------------------------------------------------------------------------- MuJoCo code pieces
_CTRL_COST = TermDef("ctrl_cost", 0.1, "minus the squared action (effort)",
                     lambda env: ["t_ctrl_cost = -(action.to(torch.float32) ** 2).sum(-1)"])


def _joint_dofs(facts: Mapping[str, Any]) -> list[int]:
    """qvel indices of the non-root joints."""
    return [i for i, lab in enumerate(facts.get("qvel_labels") or []) if lab and not lab.get("root")]


def _mujoco_terms(ctx: EnvContext) -> list[TermDef]:
    f = ctx.facts
    keys = set(ctx.state_keys)
    terms: list[TermDef] = []
    if "qvel" in keys:
        terms.append(TermDef("forward_velocity", 1.0, "velocity of the root along +x (m/s)", lambda env: [
            "t_forward_velocity = next_state['qvel'][:, $x_vel].to(torch.float32)"], mandatory=True))
    if f.get("action_dim"):
        terms.append(_CTRL_COST)
    if "root_z_pos" in f and "init_height" in f and "qpos" in keys:
        terms.append(TermDef("height", 1.0, "minus the squared deviation of the root height from its start value",
                             lambda env: [
                                 "t_height = -(next_state['qpos'][:, $z_pos].to(torch.float32) - $init_height) ** 2"]))
    if "root_pitch_pos" in f and "qpos" in keys:
        terms.append(TermDef("upright", 0.5, "minus the squared pitch of the root (rad^2)", lambda env: [
            "t_upright = -next_state['qpos'][:, $pitch_pos].to(torch.float32) ** 2"]))
    elif "root_quat_pos" in f and "qpos" in keys:
        terms.append(TermDef("upright", 0.5, "minus the tilt of the root (1 - cos of the angle to vertical)",
                             lambda env: [
                                 "quat = next_state['qpos'][:, $quat_pos:$quat_pos + 4].to(torch.float32)",
                                 "quat = quat / quat.norm(dim=-1, keepdim=True).clamp(min=1e-8)",
                                 "t_upright = -2.0 * (quat[:, 1] ** 2 + quat[:, 2] ** 2)",
                             ]))
    if f.get("terminates"):
        terms.append(TermDef("alive", 1.0, "1 per step while the episode runs (the env ends on falling)",
                             lambda env: ["t_alive = torch.ones(action.shape[0], device=action.device)"]))
    if _joint_dofs(f) and "qvel" in keys:
        terms.append(TermDef("joint_velocity", 0.001, "minus the mean squared joint velocity", lambda env: [
            "t_joint_velocity = -(next_state['qvel'][:, $joint_from:].to(torch.float32) ** 2).mean(-1)"]))
    return terms


def _mujoco_env(ctx: EnvContext, options: Mapping[str, Any]) -> dict[str, Any]:
    f = ctx.facts
    joint_dofs = _joint_dofs(f)
    return {
        "x_vel": int(f.get("root_x_vel", 0)),
        "z_pos": int(f.get("root_z_pos", 0)),
        "init_height": repr(float(f.get("init_height", 0.0))),
        "pitch_pos": int(f.get("root_pitch_pos", 0)),
        "quat_pos": int(f.get("root_quat_pos", 0)),
        "joint_from": joint_dofs[0] if joint_dofs else 0,
    }


def _other_terms(ctx: EnvContext) -> list[TermDef]:
    terms: list[TermDef] = []
    if ctx.facts.get("action_dim"):
        terms.append(_CTRL_COST)
    terms.append(TermDef("step_penalty", 0.01, "-1 per step", lambda env: [
        "t_step_penalty = -torch.ones(action.shape[0], device=action.device)"]))
    return terms


def candidate_terms(ctx: EnvContext) -> dict[str, TermDef]:
    """The reward terms this context supports, in priority order (mandatory first)."""
    if ctx.family == "minigrid":
        terms = _minigrid_terms(ctx)
    elif ctx.family == "mujoco":
        terms = _mujoco_terms(ctx)
    else:
        terms = _other_terms(ctx)
    return {t.name: t for t in terms}


# ---------------------------------------------------------------------------------------- rendering
def _fill(text: str, env: Mapping[str, Any]) -> str:
    return string.Template(text).substitute({k: str(v) for k, v in env.items()})


def render_program(ctx: EnvContext, program: Program) -> str:
    """Python source of ``program`` for ``ctx``: header, helper functions, ``compute_reward``.

    Raises ``ValueError`` naming a term the context does not support.
    """
    library = candidate_terms(ctx)
    unknown = [t for t in program.terms if t not in library]
    if unknown:
        raise ValueError(f"terms {unknown} are not available for {ctx.env_id!r}; available: {list(library)}")
    env = _minigrid_env(ctx, program.options) if ctx.family == "minigrid" else (
        _mujoco_env(ctx, program.options) if ctx.family == "mujoco" else {})
    order = [name for name in library if name in program.terms]

    # helpers, with their dependencies, in a fixed order
    needed: list[str] = []

    def need(name: str) -> None:
        if name == "$success_helpers":
            for h in _mg_success_helpers(env):
                need(h)
            return
        if name.startswith("$"):
            name = str(env[name[1:]])
        if name in needed:
            return
        for dep in _MG_HELPERS[name][0]:
            need(dep)
        needed.append(name)

    for name in order:
        for h in library[name].helpers:
            need(h)

    weights = {name: _sig(float(program.terms[name])) for name in order}
    out = [_HEADER, "# terms: " + json.dumps(weights), "# options: " + json.dumps(dict(sorted(program.options.items()))),
           "import torch", ""]
    for h in needed:
        out.append(_fill(_MG_HELPERS[h][1], env).strip("\n"))
        out.append("")
    body = ["", "def compute_reward(state, action, next_state):",
            f'    """Weighted sum of {len(order)} terms; components hold the weighted terms (they sum to the reward)."""',
            "    components = dict()"]
    for name in order:
        term = library[name]
        body.append(f"    # {name}: {term.doc}")
        for line in term.lines(env):
            body.append("    " + _fill(line.replace("{name}", name), env))
        body.append(f"    components[{name!r}] = {weights[name]!r} * t_{name}.to(torch.float32)")
    body.append("    reward = torch.stack(list(components.values())).sum(0)")
    body.append("    return reward, components")
    return "\n".join(out).rstrip("\n") + "\n\n" + "\n".join(body) + "\n"


def parse_program(code: str) -> Program | None:
    """The :class:`Program` stored in the header of ``code`` (``None`` when it has no valid header)."""
    m = _TERMS_RE.search(code or "")
    if not m:
        return None
    try:
        terms = json.loads(m.group(1))
        mo = _OPTIONS_RE.search(code)
        options = json.loads(mo.group(1)) if mo else {}
    except json.JSONDecodeError:
        return None
    if not isinstance(terms, dict) or not all(isinstance(v, (int, float)) for v in terms.values()):
        return None
    return Program({str(k): float(v) for k, v in terms.items()}, dict(options))


# ----------------------------------------------------------------------------------------- proposer
class OfflineProposer:
    """Program-search proposer: samples and mutates weighted sums of reward terms (see the module doc).

    Args:
        seed: base seed, combined with each call's ``rng_seed``.
        max_terms: most terms in a program (mandatory ones included).
        weight_scale: weights are drawn within ``base / weight_scale .. base * weight_scale``; mutation
            noise has log-standard-deviation ``ln(weight_scale) / 2``.
        gamma: discount of the potential-based progress terms.
        num_parents: best reflected programs that are mutated.
        dominance / vanish: magnitude ratios (to the median of the other active terms) above / below
            which a term counts as dominant / vanishing.
        p_add, p_drop, p_metric: probabilities of adding a term, dropping one, flipping the metric.
    """

    name = "offline"

    def __init__(self, seed: int = 0, max_terms: int = 5, weight_scale: float = 3.0, gamma: float = 0.99,
                 num_parents: int = 2, dominance: float = 10.0, vanish: float = 0.01, p_add: float = 0.3,
                 p_drop: float = 0.3, p_metric: float = 0.2) -> None:
        if max_terms < 1:
            raise ValueError(f"max_terms must be >= 1, got {max_terms}")
        if weight_scale < 1.0:
            raise ValueError(f"weight_scale must be >= 1, got {weight_scale}")
        if num_parents < 1:
            raise ValueError(f"num_parents must be >= 1, got {num_parents}")
        self.seed = int(seed)
        self.max_terms = int(max_terms)
        self.weight_scale = float(weight_scale)
        self.gamma = float(gamma)
        self.num_parents = int(num_parents)
        self.dominance = float(dominance)
        self.vanish = float(vanish)
        self.p_add, self.p_drop, self.p_metric = float(p_add), float(p_drop), float(p_metric)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "OfflineProposer":
        """Build from an ``llm`` config (``configs/llm/offline.yaml``); ``name``/``_target_`` are ignored."""
        data = {k: v for k, v in dict(cfg).items() if k not in ("name", "_target_")}
        return cls(**data)

    # ---------------------------------------------------------------------------------- public
    def propose(self, ctx: EnvContext, k: int, rng_seed: int,
                reflection: Sequence[Mapping[str, Any]] | None = None) -> list[str]:
        """K replies, each a short rationale and one fenced Python block with a reward program.

        Args:
            ctx: the environment description.
            k: number of proposals.
            rng_seed: seed of this call (e.g. the iteration); the result depends only on it and ``seed``.
            reflection: ``None`` for a first round, or one dict per evaluated candidate with ``code``,
                ``fitness`` (float or None), ``components`` (``{name: [(step, mean, min, max), ...]}``)
                and ``error`` (str or None).
        """
        programs, notes = self.propose_programs(ctx, k, rng_seed, reflection)
        library = candidate_terms(ctx)
        return [self._reply(ctx, library, prog, note, i, k) for i, (prog, note) in enumerate(zip(programs, notes))]

    def propose_programs(self, ctx: EnvContext, k: int, rng_seed: int,
                         reflection: Sequence[Mapping[str, Any]] | None = None) -> tuple[list[Program], list[str]]:
        """The programs behind :meth:`propose` and one note per program on how it was made."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        rng = random.Random(f"offline:{self.seed}:{int(rng_seed)}")
        library = candidate_terms(ctx)
        seen: set[str] = set()
        parents: list[tuple[Program, Mapping[str, Any]]] = []
        if reflection:
            for cand in reflection:
                prog = parse_program(str(cand.get("code") or ""))
                if prog is not None:
                    seen.add(prog.key())
                if prog is None or cand.get("error") or any(t not in library for t in prog.terms):
                    continue
                parents.append((prog, cand))
            parents.sort(key=lambda pc: _fitness(pc[1]), reverse=True)
            parents = parents[: self.num_parents]

        programs: list[Program] = []
        notes: list[str] = []
        # proposals [0, num_mutants) are mutations, the rest fresh samples (rules 1 and 4)
        if not parents:
            num_mutants = 0
        elif all(_fitness(c) <= 0 for _, c in parents):
            num_mutants = k - k // 2
        else:
            num_mutants = k
        for i in range(k):
            parent: Program | None = None
            cand: Mapping[str, Any] = {}
            if i < num_mutants:
                parent, cand = parents[0] if i == 0 else parents[(i - 1) % len(parents)]
            for attempt in range(51):  # a duplicate is drawn again, at most 50 times (rule 5)
                if parent is not None:
                    prog, note = self._mutate(library, parent, cand, rng, elite=(i == 0 and attempt == 0))
                else:
                    prog, note = self._sample(library, rng, i + attempt, ctx)
                if prog.key() not in seen:
                    break
            seen.add(prog.key())
            programs.append(prog)
            notes.append(note)
        return programs, notes

    # --------------------------------------------------------------------------------- sampling
    def _weight(self, term: TermDef, rng: random.Random) -> float:
        return _sig(term.base_weight * self.weight_scale ** rng.uniform(-1.0, 1.0))

    def _sample(self, library: Mapping[str, TermDef], rng: random.Random, index: int,
                ctx: EnvContext) -> tuple[Program, str]:
        mandatory = [n for n, t in library.items() if t.mandatory]
        optional = [n for n, t in library.items() if not t.mandatory]
        room = max(0, self.max_terms - len(mandatory))
        chosen: list[str] = []
        if optional and room:
            first = optional[index % len(optional)]
            size = rng.randint(1, min(room, len(optional)))
            rest = [n for n in optional if n != first]
            chosen = [first] + rng.sample(rest, size - 1)
        names = mandatory + [n for n in optional if n in chosen]
        if not names:  # nothing the state supports: a zero reward keeps the contract
            names = list(library)[:1]
        terms = {n: self._weight(library[n], rng) for n in names}
        options: dict[str, Any] = {"gamma": self.gamma}
        if ctx.family == "minigrid":
            options["metric"] = rng.choice(["l1", "l2"])
        return Program(terms, options), "fresh sample from the term library"

    # --------------------------------------------------------------------------------- mutation
    def rebalance(self, parent: Program, library: Mapping[str, TermDef],
                  components: Mapping[str, Sequence[Sequence[float]]] | None) -> tuple[dict[str, float], dict[str, str], list[str]]:
        """Rule 2 of the module doc: new weights, each rescaled term's kind (``"dominant"`` /
        ``"vanishing"``), and human-readable notes. Dropped terms are absent from the weights."""
        weights = dict(parent.terms)
        kinds: dict[str, str] = {}
        notes: list[str] = []
        if not components:
            return weights, kinds, notes
        mags: dict[str, float] = {}
        active: dict[str, bool] = {}
        for name in parent.terms:
            points = list(components.get(name) or [])
            if not points:
                continue
            mags[name] = sum(abs(float(p[1])) for p in points) / len(points)
            active[name] = any(abs(float(p[2])) > 1e-8 or abs(float(p[3])) > 1e-8 for p in points)
        for name in list(parent.terms):
            if name not in mags or library[name].mandatory:
                continue
            if not active[name]:
                weights.pop(name)
                notes.append(f"dropped {name} (never nonzero during training)")
                continue
            ref = sorted(mags[o] for o in mags if o != name and active[o])
            if not ref:
                continue
            med = ref[len(ref) // 2] if len(ref) % 2 else 0.5 * (ref[len(ref) // 2 - 1] + ref[len(ref) // 2])
            mag = mags[name]
            if med > 0 and mag > self.dominance * med:
                factor = min(0.5, max(0.1, self.dominance * med / mag))
                kinds[name] = "dominant"
                weights[name] = weights[name] * factor
                notes.append(f"{name} dominated (mean |value| {mag:.3g} vs median {med:.3g} of the others): "
                             f"weight x{factor:.2g}")
            elif med > 0 and mag < self.vanish * med:
                factor = max(2.0, min(10.0, self.vanish * med / max(mag, 1e-12)))
                kinds[name] = "vanishing"
                weights[name] = weights[name] * factor
                notes.append(f"{name} was negligible (mean |value| {mag:.3g} vs median {med:.3g}): weight x{factor:.2g}")
        return weights, kinds, notes

    def _mutate(self, library: Mapping[str, TermDef], parent: Program, cand: Mapping[str, Any],
                rng: random.Random, elite: bool) -> tuple[Program, str]:
        weights, kinds, notes = self.rebalance(parent, library, cand.get("components"))
        options = dict(parent.options)
        if not elite:
            sigma = math.log(self.weight_scale) / 2.0
            for name in list(weights):
                weights[name] *= math.exp(rng.gauss(0.0, sigma))
            unused = [n for n in library if n not in weights]
            if unused and len(weights) < self.max_terms and rng.random() < self.p_add:
                new = rng.choice(unused)
                weights[new] = self._weight(library[new], rng)
                notes.append(f"added {new}")
            droppable = [n for n in weights if not library[n].mandatory and kinds.get(n) != "vanishing"]
            if droppable and rng.random() < self.p_drop:
                gone = rng.choice(droppable)
                weights.pop(gone)
                notes.append(f"dropped {gone}")
            if "metric" in options and rng.random() < self.p_metric:
                options["metric"] = "l2" if options["metric"] == "l1" else "l1"
                notes.append(f"distance metric -> {options['metric']}")
            notes.append("perturbed all weights")
        # the rebalancing bounds hold whatever the noise did
        for name, kind in kinds.items():
            if name not in weights:
                continue
            if kind == "dominant":
                weights[name] = min(weights[name], 0.5 * parent.terms[name])
            else:
                weights[name] = max(weights[name], 2.0 * parent.terms[name])
        for name in list(weights):  # 3 significant digits, rounded so that the bounds still hold
            kind = kinds.get(name)
            weights[name] = _sig(weights[name], mode="down" if kind == "dominant" else
                                 ("up" if kind == "vanishing" else "nearest"))
        fit = cand.get("fitness")
        origin = f"mutation of a parent with fitness {_fmt(fit)}" + (" (elite: rebalanced only)" if elite else "")
        return Program(weights, options), origin + ("; " + "; ".join(notes) if notes else "")

    # ------------------------------------------------------------------------------------ reply
    @staticmethod
    def _reply(ctx: EnvContext, library: Mapping[str, TermDef], prog: Program, note: str, i: int, k: int) -> str:
        code = render_program(ctx, prog)
        parts = [f"{name} (weight {w:g}): {library[name].doc}" for name, w in prog.terms.items()]
        rationale = (f"Offline proposal {i + 1}/{k} for {ctx.env_id} ({note}). This reward is a weighted sum of "
                     + "; ".join(parts) + ".")
        return rationale + "\n\n```python\n" + code.rstrip("\n") + "\n```\n"


def _fitness(cand: Mapping[str, Any]) -> float:
    f = cand.get("fitness")
    try:
        f = float(f)
    except (TypeError, ValueError):
        return float("-inf")
    return f if math.isfinite(f) else float("-inf")


def _fmt(x: Any) -> str:
    try:
        return f"{float(x):.3g}"
    except (TypeError, ValueError):
        return "unknown"
