"""The reward search: propose reward code, validate it, train with it, reflect, repeat (Eureka-style).

One iteration (Ma et al. 2023, "Eureka: Human-Level Reward Design via Coding Large Language Models";
their defaults are 16 candidates and 5 iterations, configurable here):

1. the proposer (a language model through :mod:`rewards.llm.proposers`, or the offline program
   search) returns K replies; each is one candidate;
2. each reply's code is extracted (:func:`rewards.llm.extract.extract_code`), checked by the
   sandbox's AST policy and validated in a separate, resource-limited process on states sampled from
   the env (:func:`rewards.llm.sandbox.compile_reward`); a refused candidate is a failed candidate;
3. every valid candidate trains a fresh PPO agent with its reward replacing the env's, in a worker
   process (:mod:`rewards.llm.worker`) with a wall-clock timeout, a temporary working directory and
   an environment without API keys; candidates run in parallel (``search.workers``);
4. fitness is the task's own metric, which the reward code never writes: the evaluation success
   rate (MiniGrid) or the evaluation return of the env's own reward (other envs), averaged over the
   last ``search.select_last`` fixed-seed evaluations, not the maximum of a noisy curve;
5. the best candidate so far is kept; the next request carries the reward reflection: per-component
   mean/min/max at about ten points over training and the success curve of the iteration's best
   candidate, plus the full error text of each failed candidate; optional free-text feedback from a
   person (Text2Reward) is added; in preference mode (Yu et al. 2024, "ICPL") a teacher (simulated
   from the task metric, or a person at the terminal looking at GIFs of the policies) ranks the
   candidates instead, and the request shows the ranking without numbers.

After the last iteration the best reward is re-trained on ``search.reeval_seeds`` fresh seeds, next
to two baselines on the same seeds and budget: the env's own reward and the task metric used
directly as reward (:class:`rewards.llm.reward_module.TaskMetricReward`). The report
(:mod:`rewards.llm.report`) compares them.

Everything is written under the run directory as it happens, and a stopped search resumes from its
last finished candidate: replies are saved before training starts (a resumed search never asks the
proposer again for an iteration it already has), and a candidate with a ``result.json`` is not
trained again. Bad reward code never crashes the loop: extraction, validation and training failures
become failed candidates whose error text goes back to the proposer.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

from omegaconf import DictConfig, OmegaConf

from rewards.llm.context import EnvContext
from rewards.llm.extract import NoCodeError, extract_code
from rewards.llm.worker import scrubbed_environ

#: top-level keys of the search config that are not training keys
SEARCH_KEYS = ("llm", "iterations", "candidates", "search", "task", "run_dir")
ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ records
def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (temp file + rename), so a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@dataclass
class ProposalRequest:
    """What a proposer gets for one iteration.

    Attributes:
        ctx: the env description.
        task: the task in words.
        k: number of candidates wanted.
        iteration: 0-based iteration index.
        seed: base seed of this iteration's requests.
        best: the best candidate so far (``result.json`` dict) or ``None`` on the first iteration.
        results: all candidates of the previous iteration (successful and failed), in order.
        ranking: codes ranked best to worst by the teacher (preference mode), else ``None``.
        feedback: free-text feedback from a person, or ``None``.
    """

    ctx: EnvContext
    task: str
    k: int
    iteration: int
    seed: int
    best: Optional[dict] = None
    results: list[dict] = field(default_factory=list)
    ranking: Optional[list[str]] = None
    feedback: Optional[str] = None


class Proposer(Protocol):
    """Writes candidate replies (text with a fenced ``compute_reward`` program), one per candidate.

    A request that failed is returned as an ``Exception`` in its place; it becomes a failed candidate.
    """

    name: str

    def propose(self, request: ProposalRequest) -> list[Any]: ...


# --------------------------------------------------------------------------------- training runs
def read_progress(progress_csv: Path) -> list[dict[str, str]]:
    import csv

    if not progress_csv.exists():
        return []
    with open(progress_csv, newline="") as f:
        return list(csv.DictReader(f))


def training_stats(run_dir: Path, metric: str) -> dict[str, Any]:
    """Curves of a finished training run: eval metric, success, episode length, reward components.

    Returns ``{"success": [(step, rate)], "metric": [(step, value)], "episode_length": [(step, len)],
    "components": {name: [(step, mean, min, max)]}}`` (the final evaluation of ``summary.json`` is the
    last point of the eval curves).
    """
    rows = read_progress(run_dir / "progress.csv")
    column = "eval/success_rate" if metric == "success" else "eval/return_mean"

    def series(col: str) -> list[tuple[int, float]]:
        return [(int(float(r["time/timesteps"])), float(r[col])) for r in rows if r.get(col, "") not in ("", None)]

    success, values = series("eval/success_rate"), series(column)
    lengths = series("rollout/ep_length_mean")
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        s = read_json(summary_path)
        step = int(s["total_timesteps"])
        if not success or success[-1][0] != step:
            success.append((step, float(s["eval_success_rate"])))
            values.append((step, float(s["eval_success_rate"] if metric == "success" else s["eval_return_mean"])))
    components: dict[str, list[tuple[int, float, float, float]]] = {}
    prefix = "reward/component/"
    names = sorted({c[len(prefix):].rsplit("/", 1)[0] for c in (rows[0].keys() if rows else []) if c.startswith(prefix)})
    for name in names:
        pts = []
        for r in rows:
            cols = [r.get(f"{prefix}{name}/{s}", "") for s in ("mean", "min", "max")]
            if all(c not in ("", None) for c in cols):
                pts.append((int(float(r["time/timesteps"])), *(float(c) for c in cols)))
        components[name] = pts
    return {"success": success, "metric": values, "episode_length": lengths, "components": components}


def fitness_of(curve: Sequence[tuple[int, float]], last: int) -> float:
    """Mean of the last ``last`` evaluation points (``nan`` if there are none)."""
    tail = [v for _, v in curve][-last:]
    return float(sum(tail) / len(tail)) if tail else math.nan


def frames_to(curve: Sequence[tuple[int, float]], threshold: float) -> Optional[int]:
    """First evaluated frame count where the curve reached ``threshold`` (``None`` if never)."""
    return next((step for step, v in curve if v >= threshold), None)


def run_training_job(train_cfg: dict, job_dir: Path, timeout_s: float) -> dict[str, Any]:
    """Train one reward in a worker process; returns ``{"ok", "error", "run_dir", "wall_s"}``.

    The worker runs in a fresh temporary working directory with API keys removed from its
    environment and is killed after ``timeout_s`` seconds of wall-clock time.
    """
    job_dir = Path(job_dir).resolve()  # the worker runs in a temporary directory: absolute paths only
    job_dir.mkdir(parents=True, exist_ok=True)
    run_dir = job_dir / "train"
    job_path = job_dir / "job.yaml"
    (job_dir / "error.txt").unlink(missing_ok=True)
    OmegaConf.save(OmegaConf.create({**train_cfg, "worker_run_dir": str(run_dir)}), job_path)
    env = scrubbed_environ()
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rlreward-candidate-") as cwd:
        proc = subprocess.Popen([sys.executable, "-m", "rewards.llm.worker", str(job_path)], cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            return {"ok": False, "error": f"training timed out after {timeout_s:g} s of wall-clock time (killed)",
                    "run_dir": str(run_dir), "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    (job_dir / "worker.log").write_text(out or "")
    if proc.returncode != 0:
        err_file = job_dir / "error.txt"
        error = err_file.read_text() if err_file.exists() else (out or "")[-4000:]
        if proc.returncode < 0:
            error = f"training process killed by signal {-proc.returncode}\n{error}"
        return {"ok": False, "error": error.strip() or f"training exited with status {proc.returncode}",
                "run_dir": str(run_dir), "wall_s": wall}
    return {"ok": True, "error": None, "run_dir": str(run_dir), "wall_s": wall}


# -------------------------------------------------------------------------------------- the search
class RewardSearch:
    """The search over reward code for one env; see the module docstring.

    Args:
        cfg: the search config (``configs/synthesize.yaml``: the training config plus ``iterations``,
            ``candidates``, ``task``, ``search.*`` and ``llm``).
        run_dir: where everything is written.
        proposer: the reward writer.
        env_factory: ``() -> BatchedEnv`` for the env context and the sandbox's sampled states.
        teacher: preference mode ``"terminal"`` asks this callable for a ranking
            (``(candidates) -> list of indices, best first``); default reads ``input()``.
        feedback_fn: ``(iteration, best) -> str | None`` for ``search.feedback=terminal``; default reads ``input()``.
        log: where progress lines go.
    """

    def __init__(self, cfg: DictConfig, run_dir: Path, proposer: Proposer, env_factory: Callable[[], Any],
                 teacher: Optional[Callable[[list[dict]], list[int]]] = None,
                 feedback_fn: Optional[Callable[[int, Optional[dict]], Optional[str]]] = None,
                 log: Callable[[str], None] = print) -> None:
        from rewards.llm.context import describe_env

        self.cfg, self.run_dir, self.proposer, self.log = cfg, Path(run_dir).resolve(), proposer, log
        self.search = cfg.search
        self.env = env_factory()
        self.ctx = describe_env(self.env, str(cfg.env.id))
        fitness = str(self.search.fitness)
        if fitness not in ("auto", "success", "return"):
            raise ValueError(f"search.fitness must be auto, success or return, got {fitness!r}")
        self.metric = ("success" if self.ctx.family == "minigrid" else "return") if fitness == "auto" else fitness
        self.task = str(cfg.task) if cfg.get("task") else self._default_task()
        preference = str(self.search.preference)
        if preference not in ("off", "simulated", "terminal"):
            raise ValueError(f"search.preference must be off, simulated or terminal, got {preference!r}")
        self.preference = preference
        self.teacher = teacher or _terminal_teacher
        self.feedback_fn = feedback_fn or _terminal_feedback
        self.run_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------------ set-up
    def _default_task(self) -> str:
        if self.ctx.family == "minigrid":
            return f"Solve {self.ctx.env_id}: {self.ctx.success_desc}"
        return f"Make the agent of {self.ctx.env_id} perform its task well: {self.ctx.success_desc}"

    def train_config(self, reward: dict, seed: int, run_name: str) -> dict:
        """The training config of one run: the search config's training keys with ``reward`` replaced."""
        base = OmegaConf.to_container(self.cfg, resolve=True)
        for key in SEARCH_KEYS:
            base.pop(key, None)
        base.update({"reward": reward, "seed": int(seed), "run_name": run_name, "resume": False, "overwrite": True,
                     "progress_bar": False})
        return base

    @staticmethod
    def code_reward(name: str, code_path: Path, mode: str) -> dict:
        return {"name": name, "module": {"_target_": "rewards.llm.reward_module.CodeReward",
                                         "code_path": str(Path(code_path).resolve()), "routing": mode}}

    # ------------------------------------------------------------------------------ candidates
    def _validate(self, reply: Any, cand_dir: Path) -> tuple[Optional[str], Optional[dict]]:
        """Extract and validate one reply; returns ``(code, None)`` or ``(code_or_None, failure)``."""
        from rewards.llm.sandbox import RewardCodeError, compile_reward

        if isinstance(reply, BaseException):
            return None, {"stage": "request", "error": f"{type(reply).__name__}: {reply}"}
        (cand_dir / "reply.md").write_text(str(reply))
        try:
            code = extract_code(str(reply))
        except NoCodeError as exc:
            return None, {"stage": "extract", "error": str(exc)}
        (cand_dir / "code.py").write_text(code)
        try:
            fn = compile_reward(code, self.env, timeout_s=float(self.search.validate_timeout_s))
        except RewardCodeError as exc:
            write_json(cand_dir / "validation.json", {"ok": False, "reason": exc.reason})
            return code, {"stage": "validate", "error": exc.reason}
        write_json(cand_dir / "validation.json", {"ok": True, "components": list(getattr(fn, "component_names", []) or [])})
        return code, None

    def _train_scored(self, cfg: dict, job_dir: Path) -> dict[str, Any]:
        """Train ``cfg`` in a worker under ``job_dir``: :func:`run_training_job`'s dict, plus ``stats``
        (:func:`training_stats`) and ``fitness`` (mean of the last ``search.select_last`` evaluations)
        when the run finished."""
        job = run_training_job(cfg, job_dir, float(self.search.candidate_timeout_s))
        if job["ok"]:
            stats = training_stats(Path(job["run_dir"]), self.metric)
            job.update(stats=stats, fitness=fitness_of(stats["metric"], int(self.search.select_last)))
        return job

    def _finish(self, cand_dir: Path, base: dict, job: Optional[dict]) -> dict:
        result = dict(base)
        if job is not None:
            result["wall_s"] = job["wall_s"]
            if not job["ok"]:
                result.update(status="failed", stage="train", error=job["error"], fitness=None)
            else:
                result.update(status="ok", stage="done", error=None, fitness=job["fitness"], stats=job["stats"],
                              run_dir=job["run_dir"])
        write_json(cand_dir / "result.json", result)
        return result

    def run_iteration(self, it: int, request: ProposalRequest) -> list[dict]:
        it_dir = self.run_dir / f"iter_{it:02d}"
        replies_path = it_dir / "replies.json"
        if replies_path.exists():
            saved = read_json(replies_path)
            replies = [RuntimeError(r["error"]) if r.get("error") else r["text"] for r in saved]
        else:
            self.log(f"iteration {it}: asking {self.proposer.name} for {request.k} candidates")
            replies = self.proposer.propose(request)
            if len(replies) != request.k:
                raise RuntimeError(f"proposer {self.proposer.name} returned {len(replies)} replies, expected {request.k}")
            write_json(replies_path, [{"error": f"{type(r).__name__}: {r}"} if isinstance(r, BaseException) else {"text": str(r)}
                                      for r in replies])
        results: list[Optional[dict]] = [None] * len(replies)
        jobs = []
        for k, reply in enumerate(replies):
            cand_dir = it_dir / f"cand_{k:02d}"
            cand_dir.mkdir(parents=True, exist_ok=True)
            if (cand_dir / "result.json").exists():
                results[k] = read_json(cand_dir / "result.json")
                continue
            code, failure = self._validate(reply, cand_dir)
            base = {"iteration": it, "index": k, "name": f"iter{it:02d}_cand{k:02d}", "code": code,
                    "cand_dir": str(cand_dir)}
            if failure is not None:
                results[k] = self._finish(cand_dir, {**base, "status": "failed", **failure, "fitness": None}, None)
                self.log(f"  candidate {k}: failed at {failure['stage']}: {failure['error'].strip().splitlines()[-1][:120]}")
                continue
            cfg = self.train_config(self.code_reward(base["name"], cand_dir / "code.py", str(self.search.reward_mode)),
                                    int(self.cfg.seed), base["name"])
            jobs.append((k, cand_dir, base, cfg))

        def train_one(item):
            k, cand_dir, base, cfg = item
            return k, self._finish(cand_dir, base, self._train_scored(cfg, cand_dir))

        with ThreadPoolExecutor(max_workers=max(1, int(self.search.workers))) as pool:
            for k, result in pool.map(train_one, jobs):
                results[k] = result
                msg = (f"fitness {result['fitness']:.3f}" if result["status"] == "ok"
                       else f"failed at train: {str(result['error']).strip().splitlines()[-1][:120]}")
                self.log(f"  candidate {k}: {msg}")
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------------------ preference
    def rank(self, results: list[dict], saved: Optional[list[str]] = None) -> list[dict]:
        """Successful candidates best first: by fitness, or by the teacher in preference mode.

        ``saved``: candidate names in the order a person already gave for these results (a resumed
        search); with the terminal teacher it is used instead of asking again.
        """
        ok = [r for r in results if r["status"] == "ok"]
        if self.preference == "terminal" and len(ok) > 1:
            if saved is not None and sorted(saved) == sorted(r["name"] for r in ok):
                by_name = {r["name"]: r for r in ok}
                return [by_name[name] for name in saved]
            for r in ok:
                r["gif"] = self._render(r)
            order = self.teacher(ok)
            if sorted(order) != list(range(len(ok))):
                raise ValueError(f"a ranking must list each of the {len(ok)} candidates once, got {order}")
            return [ok[i] for i in order]
        return sorted(ok, key=lambda r: (-(r["fitness"] if r["fitness"] == r["fitness"] else -math.inf), r["index"]))

    def _render(self, result: dict) -> Optional[str]:
        """A GIF of one episode of the candidate's final policy (MiniGrid), for a person to judge."""
        try:
            from rewards.llm.rollout_gif import policy_gif

            return policy_gif(Path(result["run_dir"]), str(self.cfg.env.id), Path(result["cand_dir"]) / "policy.gif",
                              seed=int(self.cfg.seed))
        except Exception as exc:  # noqa: BLE001 - a missing picture must not stop the search
            self.log(f"  (no GIF for {result['name']}: {exc})")
            return None

    # ------------------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        """Run (or resume) the search and the final evaluation; returns the summary dict."""
        state_path = self.run_dir / "search_state.json"
        state = read_json(state_path) if state_path.exists() else {"best": None, "iterations": []}
        write_json(self.run_dir / "env_context.json", {"text": self.ctx.text, "task": self.task, "metric": self.metric})
        best: Optional[dict] = state["best"]
        done = {e["iteration"]: e for e in state["iterations"]}
        previous: list[dict] = []
        ranking: Optional[list[str]] = None
        feedback: Optional[str] = None
        for it in range(int(self.cfg.iterations)):
            request = ProposalRequest(self.ctx, self.task, int(self.cfg.candidates), it, int(self.cfg.seed) * 1000 + it * 100,
                                      best=best, results=previous, ranking=ranking, feedback=feedback)
            results = self.run_iteration(it, request)
            ranked = self.rank(results, (done.get(it) or {}).get("ranking"))
            if ranked and (best is None or self.preference == "terminal" or ranked[0]["fitness"] > best["fitness"]):
                # with a person as teacher, their top choice of the newest iteration becomes the base
                best = ranked[0]
                (self.run_dir / "best_reward.py").write_text(best["code"])
            ranking = [r["code"] for r in ranked] if self.preference != "off" else None
            previous = results
            if it in done and (self.run_dir / f"iter_{it + 1:02d}" / "replies.json").exists():
                feedback = done[it].get("feedback")  # already sent with the next request: do not ask again
            else:
                feedback = self._feedback(it, best)
            entry = {"iteration": it, "ok": sum(r["status"] == "ok" for r in results),
                     "failed": sum(r["status"] != "ok" for r in results),
                     "best_fitness": ranked[0]["fitness"] if ranked else None, "feedback": feedback,
                     "ranking": [r["name"] for r in ranked]}
            state["iterations"] = [e for e in state["iterations"] if e["iteration"] != it] + [entry]
            state["best"] = best
            write_json(state_path, state)
            self.log(f"iteration {it}: {entry['ok']} trained, {entry['failed']} failed; "
                     f"best so far: {best['name'] + ' fitness %.3f' % best['fitness'] if best else 'none'}")
        final = self.final_evaluation(best)
        summary = {"env_id": str(self.cfg.env.id), "proposer": self.proposer.name, "metric": self.metric,
                   "iterations": state["iterations"], "best": _public(best), "final": final,
                   "run_dir": str(self.run_dir)}
        write_json(self.run_dir / "summary.json", summary)
        from rewards.llm.report import write_report

        summary["report"] = str(write_report(self.run_dir))
        write_json(self.run_dir / "summary.json", summary)
        return summary

    def _feedback(self, it: int, best: Optional[dict]) -> Optional[str]:
        mode = str(self.search.feedback)
        if mode == "none" or it + 1 >= int(self.cfg.iterations):
            return None
        if mode == "terminal":
            return self.feedback_fn(it, best) or None
        path = Path(mode)
        if not path.exists():
            raise FileNotFoundError(f"search.feedback={mode!r}: expected none, terminal or an existing text file")
        return path.read_text().strip() or None

    def final_evaluation(self, best: Optional[dict]) -> dict[str, Any]:
        """Re-train the best reward and the two baselines on fresh seeds with the same budget."""
        seeds = [int(self.cfg.seed) + 1000 + j for j in range(int(self.search.reeval_seeds))]
        final_dir = self.run_dir / "final"
        arms: dict[str, dict] = {}
        if best is not None:
            code_path = self.run_dir / "best_reward.py"
            arms["best"] = self.code_reward("best", code_path, str(self.search.reward_mode))
        if bool(self.search.baselines):
            arms["env_reward"] = {"name": "env_reward"}
            if self.metric == "success":
                arms["task_metric"] = {"name": "task_metric",
                                       "module": {"_target_": "rewards.llm.reward_module.TaskMetricReward"}}
        jobs = [(arm, seed) for arm in arms for seed in seeds]

        def train_one(item):
            arm, seed = item
            # the best arm's runs are keyed by its code, so a resumed search that found a better reward
            # re-trains it instead of reusing the runs of the previous best
            tag = f"best-{hashlib.sha256(best['code'].encode()).hexdigest()[:10]}" if arm == "best" else arm
            job_dir = final_dir / f"{tag}_seed{seed}"
            if (job_dir / "result.json").exists():
                return arm, seed, read_json(job_dir / "result.json")
            job = self._train_scored(self.train_config(arms[arm], seed, f"{arm}_seed{seed}"), job_dir)
            res = {"ok": job["ok"], "error": job["error"], "wall_s": job["wall_s"]}
            if job["ok"]:
                res.update(fitness=job["fitness"], success=job["stats"]["success"], metric_curve=job["stats"]["metric"])
            write_json(job_dir / "result.json", res)
            return arm, seed, res

        if jobs:
            self.log(f"final evaluation: {', '.join(arms)} on seeds {seeds}")
        out: dict[str, Any] = {"seeds": seeds, "arms": {a: {} for a in arms}}
        with ThreadPoolExecutor(max_workers=max(1, int(self.search.workers))) as pool:
            for arm, seed, res in pool.map(train_one, jobs):
                out["arms"][arm][str(seed)] = res
        for arm, per_seed in out["arms"].items():
            fits = [r["fitness"] for r in per_seed.values() if r.get("ok")]
            per_seed_summary = {"fitness_mean": sum(fits) / len(fits) if fits else None, "runs_ok": len(fits)}
            out["arms"][arm] = {"runs": per_seed, **per_seed_summary}
        return out


def _public(result: Optional[dict]) -> Optional[dict]:
    if result is None:
        return None
    return {k: result.get(k) for k in ("name", "iteration", "index", "fitness", "cand_dir")}


def _terminal_teacher(candidates: list[dict]) -> list[int]:
    print("\nRank the candidates' behaviour, best first (GIFs of one episode each):")
    for i, r in enumerate(candidates):
        print(f"  [{i}] {r['name']}: {r.get('gif') or '(no GIF)'}")
    answer = input("ranking (e.g. 2 0 1): ")
    return [int(x) for x in answer.replace(",", " ").split()]


def _terminal_feedback(it: int, best: Optional[dict]) -> Optional[str]:
    where = best["cand_dir"] if best else "(none)"
    return input(f"\nfeedback on iteration {it}'s best reward ({where}), empty to skip: ").strip() or None
