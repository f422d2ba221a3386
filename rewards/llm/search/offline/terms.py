"""A reward term of the offline proposer's library, weight rounding, and the terms of envs of no known family.

A term is an unweighted float32[N] quantity computed by a few lines of code inside ``compute_reward``;
:mod:`.minigrid_terms` and :mod:`.mujoco_terms` hold the libraries of the two known env families.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from rewards.llm.context import EnvContext


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


def sig(x: float, digits: int = 3, mode: str = "nearest") -> float:
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


CTRL_COST = TermDef("ctrl_cost", 0.1, "minus the squared action (effort)",
                     lambda env: ["t_ctrl_cost = -(action.to(torch.float32) ** 2).sum(-1)"])


def other_terms(ctx: EnvContext) -> list[TermDef]:
    terms: list[TermDef] = []
    if ctx.facts.get("action_dim"):
        terms.append(CTRL_COST)
    terms.append(TermDef("step_penalty", 0.01, "-1 per step", lambda env: [
        "t_step_penalty = -torch.ones(action.shape[0], device=action.device)"]))
    return terms
