"""The search's records and the small helpers every part of it shares (no other search module is imported).

* :class:`Candidate` — one proposed reward and what became of it; it is ``iter_NN/cand_KK/result.json``
  (:meth:`Candidate.to_dict` / :meth:`Candidate.from_dict` read and write exactly that format) and the
  ``best`` entry of ``search_state.json``.
* :class:`TrainingStats` — the curves of one finished training run (the ``stats`` of a result).
* :class:`ProposalRequest` and :class:`Proposer` — what a proposer gets and the interface it offers.
* :func:`write_json` / :func:`read_json` (atomic JSON files), :func:`frames_to`, :func:`fitness_of`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, Sequence

from rewards.llm.context import EnvContext

#: a curve: ``[(step, value)]`` with ``step`` in environment frames
Curve = list[tuple[int, float]]


# ------------------------------------------------------------------------------------------- files
def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (temp file + rename), so a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The JSON value stored at ``path``."""
    return json.loads(Path(path).read_text())


# ------------------------------------------------------------------------------------------ curves
def fitness_of(curve: Sequence[Sequence[float]], last: int) -> float:
    """Mean of the last ``last`` evaluation points of ``[(step, value)]`` (``nan`` if there are none)."""
    tail = [v for _, v in curve][-last:]
    return float(sum(tail) / len(tail)) if tail else math.nan


def frames_to(curve: Sequence[Sequence[float]], threshold: float) -> Optional[int]:
    """First evaluated frame count where the curve ``[(step, value)]`` reached ``threshold`` (``None`` if never)."""
    return next((step for step, v in curve if v >= threshold), None)


@dataclass
class TrainingStats:
    """Curves of a finished training run (steps in environment frames).

    Attributes:
        success: ``[(step, eval success rate)]``.
        metric: ``[(step, fitness metric)]`` (the success rate, or the eval return of the env's reward).
        episode_length: ``[(step, mean rollout episode length)]``.
        components: ``{name: [(step, mean, min, max)]}`` of each reward component over the rollouts.
    """

    success: list = field(default_factory=list)
    metric: list = field(default_factory=list)
    episode_length: list = field(default_factory=list)
    components: dict[str, list] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``stats`` object of ``result.json``."""
        return {"success": self.success, "metric": self.metric, "episode_length": self.episode_length,
                "components": self.components}

    @classmethod
    def from_dict(cls, data: Optional[dict[str, Any]]) -> "TrainingStats":
        data = data or {}
        return cls(success=list(data.get("success") or []), metric=list(data.get("metric") or []),
                   episode_length=list(data.get("episode_length") or []),
                   components=dict(data.get("components") or {}))


# -------------------------------------------------------------------------------------- candidates
#: where a candidate stopped: before training (request, extract, validate), in training, or done
STAGES = ("request", "extract", "validate", "train", "done")


@dataclass
class Candidate:
    """One proposed reward of the search and what became of it.

    Attributes:
        iteration: 0-based iteration of the search.
        index: position among the iteration's candidates.
        name: ``iterNN_candKK`` (also the run name of its training).
        code: the extracted reward code (``None`` when the request failed or the reply held none).
        cand_dir: the candidate's folder (``iter_NN/cand_KK``).
        status: ``"ok"`` (trained) or ``"failed"``.
        stage: one of :data:`STAGES`: where it failed, or ``"done"``.
        error: the full error text sent back to the proposer (``None`` when ok).
        fitness: the task metric of its training (mean of the last evaluations), ``None`` unless trained.
        wall_s: wall-clock seconds of its training run (``None`` when it never trained).
        stats: the curves of its training (``None`` unless trained).
        run_dir: the training run's folder (``None`` unless trained).
        gif: a GIF of its policy, rendered for a person ranking candidates (preference mode only).
    """

    iteration: int
    index: int
    name: str
    code: Optional[str]
    cand_dir: str
    status: str = "failed"
    stage: str = "request"
    error: Optional[str] = None
    fitness: Optional[float] = None
    wall_s: Optional[float] = None
    stats: Optional[TrainingStats] = None
    run_dir: Optional[str] = None
    gif: Optional[str] = None

    @property
    def ok(self) -> bool:
        """Trained to the end."""
        return self.status == "ok"

    @property
    def code_hash(self) -> str:
        """First 10 hex digits of the sha256 of the code (names the best arm's final runs)."""
        return hashlib.sha256((self.code or "").encode()).hexdigest()[:10]

    def error_line(self, limit: int = 120) -> str:
        """The last line of the error text, at most ``limit`` characters ("" without an error)."""
        return (str(self.error or "").strip().splitlines() or [""])[-1][:limit]

    # ----------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """The ``result.json`` record; ``wall_s``, ``stats``, ``run_dir`` and ``gif`` only when set."""
        out: dict[str, Any] = {"iteration": self.iteration, "index": self.index, "name": self.name, "code": self.code,
                               "cand_dir": self.cand_dir, "status": self.status, "stage": self.stage,
                               "error": self.error, "fitness": self.fitness}
        if self.wall_s is not None:
            out["wall_s"] = self.wall_s
        if self.stats is not None:
            out["stats"] = self.stats.to_dict()
        if self.run_dir is not None:
            out["run_dir"] = self.run_dir
        if self.gif is not None:
            out["gif"] = self.gif
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Candidate":
        """Read a ``result.json`` record (unknown keys are ignored)."""
        stats = data.get("stats")
        return cls(iteration=int(data["iteration"]), index=int(data["index"]), name=str(data["name"]),
                   code=data.get("code"), cand_dir=str(data["cand_dir"]), status=str(data.get("status", "failed")),
                   stage=str(data.get("stage", "request")), error=data.get("error"), fitness=data.get("fitness"),
                   wall_s=data.get("wall_s"), stats=TrainingStats.from_dict(stats) if stats is not None else None,
                   run_dir=data.get("run_dir"), gif=data.get("gif"))

    def public(self) -> dict[str, Any]:
        """What the search summary shows of the best candidate."""
        return {"name": self.name, "iteration": self.iteration, "index": self.index, "fitness": self.fitness,
                "cand_dir": self.cand_dir}


# --------------------------------------------------------------------------------------- proposals
@dataclass
class ProposalRequest:
    """What a proposer gets for one iteration.

    Attributes:
        ctx: the env description.
        task: the task in words.
        k: number of candidates wanted.
        iteration: 0-based iteration index.
        seed: base seed of this iteration's requests.
        best: the best candidate so far, or ``None`` on the first iteration.
        results: all candidates of the previous iteration (successful and failed), in order.
        ranking: codes ranked best to worst by the teacher (preference mode), else ``None``.
        feedback: free-text feedback from a person, or ``None``.
    """

    ctx: EnvContext
    task: str
    k: int
    iteration: int
    seed: int
    best: Optional[Candidate] = None
    results: list[Candidate] = field(default_factory=list)
    ranking: Optional[list[str]] = None
    feedback: Optional[str] = None


class Proposer(Protocol):
    """Writes candidate replies (text with a fenced ``compute_reward`` program), one per candidate.

    A request that failed is returned as an ``Exception`` in its place; it becomes a failed candidate.
    """

    name: str

    def propose(self, request: ProposalRequest) -> list[Any]: ...
