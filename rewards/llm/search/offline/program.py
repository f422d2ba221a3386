"""The reward program the offline proposer assembles: weights and options, rendered to Python and read back.

A program is a weighted sum ``reward = sum_t w_t * term_t``; the components dict holds the *weighted*
terms (they sum to the reward). Weights and options are stored in the code's header as JSON
(``# terms: {...}``, ``# options: {...}``), so mutation reads them back without parsing Python.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rewards.llm.context import EnvContext
from rewards.llm.search.offline.minigrid_terms import MG_HELPERS, minigrid_env, minigrid_terms, success_helpers
from rewards.llm.search.offline.mujoco_terms import mujoco_env, mujoco_terms
from rewards.llm.search.offline.terms import TermDef, other_terms, sig

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
        return json.dumps({"t": {k: sig(v) for k, v in sorted(self.terms.items())},
                           "o": dict(sorted(self.options.items()))}, sort_keys=True)


def candidate_terms(ctx: EnvContext) -> dict[str, TermDef]:
    """The reward terms this context supports, in priority order (mandatory first)."""
    if ctx.family == "minigrid":
        terms = minigrid_terms(ctx)
    elif ctx.family == "mujoco":
        terms = mujoco_terms(ctx)
    else:
        terms = other_terms(ctx)
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
    env = minigrid_env(ctx, program.options) if ctx.family == "minigrid" else (
        mujoco_env(ctx, program.options) if ctx.family == "mujoco" else {})
    order = [name for name in library if name in program.terms]

    # helpers, with their dependencies, in a fixed order
    needed: list[str] = []

    def need(name: str) -> None:
        if name == "$success_helpers":
            for h in success_helpers(env):
                need(h)
            return
        if name.startswith("$"):
            name = str(env[name[1:]])
        if name in needed:
            return
        for dep in MG_HELPERS[name][0]:
            need(dep)
        needed.append(name)

    for name in order:
        for h in library[name].helpers:
            need(h)

    weights = {name: sig(float(program.terms[name])) for name in order}
    out = [_HEADER, "# terms: " + json.dumps(weights), "# options: " + json.dumps(dict(sorted(program.options.items()))),
           "import torch", ""]
    for h in needed:
        out.append(_fill(MG_HELPERS[h][1], env).strip("\n"))
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
