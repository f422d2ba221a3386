"""The offline proposer itself: its settings, initial sampling and mutation of reward programs.

The rules (initial proposals, mutation steps 1-5) are those of the package doc
(:mod:`rewards.llm.search.offline`). Everything is deterministic given ``(seed, rng_seed)``.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from rewards.llm.context import EnvContext
from rewards.llm.search.formatting import format_number, python_fence
from rewards.llm.search.offline.program import Program, candidate_terms, parse_program, render_program
from rewards.llm.search.offline.terms import TermDef, sig


@dataclasses.dataclass(frozen=True)
class OfflineConfig:
    """Settings of :class:`OfflineProposer`: the one source of their defaults (``configs/llm/offline.yaml``
    holds only what differs).

    Attributes:
        seed: base seed, combined with each call's ``rng_seed``.
        max_terms: most terms in a program (mandatory ones included).
        weight_scale: weights are drawn within ``base / weight_scale .. base * weight_scale``; mutation
            noise has log-standard-deviation ``ln(weight_scale) / 2``.
        gamma: discount of the potential-based progress terms.
        num_parents: best reflected programs that are mutated.
        dominance: a term above ``dominance`` x the median magnitude of the other active terms is scaled down.
        vanish: a term below ``vanish`` x that median is scaled up.
        p_add: probability that a mutation adds an unused term.
        p_drop: probability that a mutation drops an optional term.
        p_metric: probability that a mutation flips the distance metric (Manhattan <-> Euclidean).
    """

    seed: int = 0
    max_terms: int = 5
    weight_scale: float = 3.0
    gamma: float = 0.99
    num_parents: int = 2
    dominance: float = 10.0
    vanish: float = 0.01
    p_add: float = 0.3
    p_drop: float = 0.3
    p_metric: float = 0.2

    def __post_init__(self) -> None:
        if self.max_terms < 1:
            raise ValueError(f"max_terms must be >= 1, got {self.max_terms}")
        if self.weight_scale < 1.0:
            raise ValueError(f"weight_scale must be >= 1, got {self.weight_scale}")
        if self.num_parents < 1:
            raise ValueError(f"num_parents must be >= 1, got {self.num_parents}")
        for f in dataclasses.fields(self):  # values from a YAML / CLI override come as their own types
            object.__setattr__(self, f.name, int(getattr(self, f.name)) if f.type == "int" else float(getattr(self, f.name)))


class OfflineProposer:
    """Program-search proposer: samples and mutates weighted sums of reward terms (see the package doc).

    Args:
        config: the settings (:class:`OfflineConfig`, whose defaults are the only ones); ``fields``
            replace single settings, e.g. ``OfflineProposer(seed=3)``.
    """

    name = "offline"

    def __init__(self, config: OfflineConfig | None = None, /, **fields: Any) -> None:
        self.config = dataclasses.replace(config or OfflineConfig(), **fields)

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
        rng = random.Random(f"offline:{self.config.seed}:{int(rng_seed)}")
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
            parents = parents[: self.config.num_parents]

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
        return sig(term.base_weight * self.config.weight_scale ** rng.uniform(-1.0, 1.0))

    def _sample(self, library: Mapping[str, TermDef], rng: random.Random, index: int,
                ctx: EnvContext) -> tuple[Program, str]:
        mandatory = [n for n, t in library.items() if t.mandatory]
        optional = [n for n, t in library.items() if not t.mandatory]
        room = max(0, self.config.max_terms - len(mandatory))
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
        options: dict[str, Any] = {"gamma": self.config.gamma}
        if ctx.family == "minigrid":
            options["metric"] = rng.choice(["l1", "l2"])
        return Program(terms, options), "fresh sample from the term library"

    # --------------------------------------------------------------------------------- mutation
    def rebalance(self, parent: Program, library: Mapping[str, TermDef],
                  components: Mapping[str, Sequence[Sequence[float]]] | None,
                  ) -> tuple[dict[str, float], dict[str, str], list[str]]:
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
            if med > 0 and mag > self.config.dominance * med:
                factor = min(0.5, max(0.1, self.config.dominance * med / mag))
                kinds[name] = "dominant"
                weights[name] = weights[name] * factor
                notes.append(f"{name} dominated (mean |value| {mag:.3g} vs median {med:.3g} of the others): "
                             f"weight x{factor:.2g}")
            elif med > 0 and mag < self.config.vanish * med:
                factor = max(2.0, min(10.0, self.config.vanish * med / max(mag, 1e-12)))
                kinds[name] = "vanishing"
                weights[name] = weights[name] * factor
                notes.append(f"{name} was negligible (mean |value| {mag:.3g} vs median {med:.3g}): weight x{factor:.2g}")
        return weights, kinds, notes

    def _mutate(self, library: Mapping[str, TermDef], parent: Program, cand: Mapping[str, Any],
                rng: random.Random, elite: bool) -> tuple[Program, str]:
        weights, kinds, notes = self.rebalance(parent, library, cand.get("components"))
        options = dict(parent.options)
        if not elite:
            sigma = math.log(self.config.weight_scale) / 2.0
            for name in list(weights):
                weights[name] *= math.exp(rng.gauss(0.0, sigma))
            unused = [n for n in library if n not in weights]
            if unused and len(weights) < self.config.max_terms and rng.random() < self.config.p_add:
                new = rng.choice(unused)
                weights[new] = self._weight(library[new], rng)
                notes.append(f"added {new}")
            droppable = [n for n in weights if not library[n].mandatory and kinds.get(n) != "vanishing"]
            if droppable and rng.random() < self.config.p_drop:
                gone = rng.choice(droppable)
                weights.pop(gone)
                notes.append(f"dropped {gone}")
            if "metric" in options and rng.random() < self.config.p_metric:
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
            weights[name] = sig(weights[name], mode="down" if kind == "dominant" else
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
        return rationale + "\n\n" + python_fence(code) + "\n"


def _fitness(cand: Mapping[str, Any]) -> float:
    f = cand.get("fitness")
    try:
        f = float(f)
    except (TypeError, ValueError):
        return float("-inf")
    return f if math.isfinite(f) else float("-inf")


def _fmt(x: Any) -> str:
    return format_number(x, ".3g", missing="unknown")
