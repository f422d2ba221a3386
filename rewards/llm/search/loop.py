"""The reward search: propose reward code, validate it, train with it, reflect, repeat (Eureka-style).

One iteration (Ma et al. 2023, "Eureka: Human-Level Reward Design via Coding Large Language Models";
their defaults are 16 candidates and 5 iterations, configurable here):

1. the proposer (a language model through :mod:`rewards.llm.search.proposers`, or the offline program
   search) returns K replies; each is one candidate;
2. each reply's code is extracted (:func:`rewards.llm.extract.extract_code`), checked by the
   sandbox's AST policy and validated in a separate, resource-limited process on states sampled from
   the env in the isolated validation child (:func:`rewards.llm.sandbox.validate_in_subprocess`; the
   search process never executes model code); a refused candidate is a failed candidate;
3. every valid candidate trains a fresh PPO agent with its reward replacing the env's, in a worker
   process (:mod:`rewards.llm.search.worker`, started by :mod:`rewards.llm.search.training`) with a
   wall-clock timeout (``search.candidate_timeout_s``), rlimits on its memory, CPU time and file
   sizes (``search.worker_memory_mb``, ``worker_cpu_s``, ``worker_file_mb``; :func:`worker_limits`),
   a deadline on each call of the reward code (``search.reward_call_timeout_s``), a temporary
   working directory and an environment without API keys; candidates run in parallel
   (``search.workers``);
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
(:mod:`rewards.llm.search.report`) compares them.

Everything is written under the run directory as it happens, and a stopped search resumes from its
last finished candidate: replies are saved before training starts (a resumed search never asks the
proposer again for an iteration it already has), and a candidate with a ``result.json`` is not
trained again. Bad reward code never crashes the loop: extraction, validation and training failures
become failed candidates whose error text goes back to the proposer. Candidates travel between the
loop, the proposers and the report as :class:`~rewards.llm.search.records.Candidate` records.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf

from rewards.llm.context import describe_env
from rewards.llm.extract import NoCodeError, extract_code
from rewards.llm.sandbox import RewardCodeError, sample_states, validate_in_subprocess
from rewards.llm.sandbox.process import ChildLimits
from rewards.llm.search.chat import LLMRequestError
from rewards.llm.search.config_schemas import check_worker_limits, search_setting
from rewards.llm.search.proposers import ReplyText, cut_off_message
from rewards.llm.search.records import Candidate, ProposalRequest, Proposer, fitness_of, read_json, write_json
from rewards.llm.search.report import first_line, write_preflight_report, write_report
from rewards.llm.search.rollout_gif import policy_gif
from rewards.llm.search.training import TrainingJob, run_training_job, training_stats

#: top-level keys of the search config that are not training keys
SEARCH_KEYS = ("llm", "iterations", "candidates", "search", "task", "run_dir")

#: a teacher ranks candidates (their ``result.json`` records, with ``gif``): indices, best first
Teacher = Callable[[list[dict]], list[int]]
#: ``(iteration, best record or None) -> feedback text or None``
FeedbackFn = Callable[[int, Optional[dict]], Optional[str]]


class PreflightError(RuntimeError):
    """The endpoint check before the first iteration failed; ``report`` is the report.md holding the full text."""

    def __init__(self, message: str, report: Path) -> None:
        super().__init__(message)
        self.report = report


def _saved_reply(reply: Any) -> dict[str, Any]:
    """One entry of ``replies.json``: the error, or the text (with how it ended, for a cut-off reply)."""
    if isinstance(reply, BaseException):
        return {"error": f"{type(reply).__name__}: {reply}"}
    entry: dict[str, Any] = {"text": str(reply)}
    if getattr(reply, "finish_reason", None) is not None:
        entry["finish_reason"] = reply.finish_reason
        entry["max_tokens"] = getattr(reply, "max_tokens", None)
    return entry


def worker_limits(cfg: DictConfig) -> ChildLimits:
    """The rlimits of every training worker of the search config ``cfg``: ``search.worker_memory_mb``,
    ``worker_file_mb`` and ``worker_cpu_s``; a null ``worker_cpu_s`` is twice the CPU time the run
    could use in its wall-clock limit, ``2 * candidate_timeout_s`` times its torch threads
    (``num_threads``, or the CPU count when null): a backstop that never ends a run the wall clock
    would let finish, even with a helper thread busy next to the torch threads. The address-space
    limit is dropped for a run on CUDA (:func:`~rewards.llm.search.training.limits_for_device`)."""
    search = cfg.search
    cpu = search_setting(search, "worker_cpu_s")
    if cpu is None:
        threads = cfg.get("num_threads") or os.cpu_count() or 1
        cpu = math.ceil(2 * float(search.candidate_timeout_s) * int(threads))
    return ChildLimits(memory_mb=search_setting(search, "worker_memory_mb"), cpu_s=int(cpu),
                       file_mb=search_setting(search, "worker_file_mb"))


# -------------------------------------------------------------------------------------- the search
class RewardSearch:
    """The search over reward code for one env; see the module docstring.

    Args:
        cfg: the search config (``configs/synthesize.yaml``: the training config plus ``iterations``,
            ``candidates``, ``task``, ``search.*`` and ``llm``).
        run_dir: where everything is written.
        proposer: the reward writer.
        env_factory: ``() -> BatchedEnv`` for the env context and the sandbox's sampled states.
        teacher: preference mode ``"terminal"`` asks this callable for a ranking (``(candidates) -> list
            of indices, best first``; the candidates as their ``result.json`` records plus ``gif``);
            default reads ``input()``.
        feedback_fn: ``(iteration, best record or None) -> str | None`` for ``search.feedback=terminal``;
            default reads ``input()``.
        log: where progress lines go.
    """

    def __init__(self, cfg: DictConfig, run_dir: Path, proposer: Proposer, env_factory: Callable[[], Any],
                 teacher: Optional[Teacher] = None, feedback_fn: Optional[FeedbackFn] = None,
                 log: Callable[[str], None] = print) -> None:
        self.cfg, self.run_dir, self.proposer, self.log = cfg, Path(run_dir).resolve(), proposer, log
        self.search = cfg.search
        check_worker_limits(self.search)
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

    def code_reward(self, name: str, code_path: Path, routing: str) -> dict:
        """The ``reward`` config of a run with the program in ``code_path``: a
        :class:`~rewards.llm.reward_module.CodeReward` with the per-call deadline ``search.reward_call_timeout_s``."""
        timeout = search_setting(self.search, "reward_call_timeout_s")
        return {"name": name, "module": {"_target_": "rewards.llm.reward_module.CodeReward",
                                         "code_path": str(Path(code_path).resolve()), "routing": routing,
                                         "call_timeout_s": None if timeout is None else float(timeout)}}


    # ------------------------------------------------------------------------------ candidates
    def _validate(self, reply: Any, cand: Candidate) -> Candidate:
        """Extract and validate one reply: ``cand`` with its code, failed at a stage if it did not pass."""
        cand_dir = Path(cand.cand_dir)
        if isinstance(reply, BaseException):
            cand.stage, cand.error = "request", f"{type(reply).__name__}: {reply}"
            return cand
        (cand_dir / "reply.md").write_text(str(reply))
        cut_off = cut_off_message(reply)
        try:
            cand.code = extract_code(str(reply))
        except NoCodeError as exc:
            cand.stage, cand.error = "extract", f"{cut_off}: {exc}" if cut_off else str(exc)
            return cand
        if cut_off:
            # the code may stop mid-program even when it parses: never train a truncated reward
            (cand_dir / "code.py").write_text(cand.code)
            cand.stage, cand.error = "extract", (f"{cut_off}; its code block may be incomplete, so it was not trained. "
                                                 "Write a shorter reply (or raise llm.max_tokens).")
            return cand
        (cand_dir / "code.py").write_text(cand.code)
        try:  # checked here, run only in the isolated child: the search process never executes model code
            report = validate_in_subprocess(cand.code, sample_states(self.env, num_steps=8, seed=0),
                                            timeout_s=float(self.search.validate_timeout_s), raise_on_error=True,
                                            isolation=str(self.search.get("isolation", "auto")))
        except RewardCodeError as exc:
            write_json(cand_dir / "validation.json", {"ok": False, "reason": exc.reason})
            cand.stage, cand.error = "validate", exc.reason
            return cand
        write_json(cand_dir / "validation.json", {"ok": True, "components": list(report.component_names)})
        cand.stage = "train"
        return cand

    def _train_scored(self, cfg: dict, job_dir: Path) -> TrainingJob:
        """Train ``cfg`` in a worker under ``job_dir``; a finished run gets its ``stats``
        (:func:`training_stats`) and ``fitness`` (mean of the last ``search.select_last`` evaluations)."""
        job = run_training_job(cfg, job_dir, float(self.search.candidate_timeout_s),
                               isolation=str(self.search.get("isolation", "auto")), readable=[self.run_dir],
                               limits=worker_limits(self.cfg))
        if job.ok:
            job.stats = training_stats(Path(job.run_dir), self.metric)
            job.fitness = fitness_of(job.stats.metric, int(self.search.select_last))
        return job

    @staticmethod
    def _finish(cand: Candidate, job: Optional[TrainingJob]) -> Candidate:
        """Record the training outcome (if it trained) and write ``result.json``."""
        if job is not None:
            cand.wall_s = job.wall_s
            if not job.ok:
                cand.status, cand.stage, cand.error, cand.fitness = "failed", "train", job.error, None
            else:
                cand.status, cand.stage, cand.error, cand.fitness = "ok", "done", None, job.fitness
                cand.stats, cand.run_dir = job.stats, job.run_dir
        write_json(Path(cand.cand_dir) / "result.json", cand.to_dict())
        return cand

    def run_iteration(self, it: int, request: ProposalRequest) -> list[Candidate]:
        it_dir = self.run_dir / f"iter_{it:02d}"
        replies_path = it_dir / "replies.json"
        if replies_path.exists():
            saved = read_json(replies_path)
            replies = [RuntimeError(r["error"]) if r.get("error") else
                       ReplyText(r["text"], r.get("finish_reason"), r.get("max_tokens")) for r in saved]
        else:
            self.log(f"iteration {it}: asking {self.proposer.name} for {request.k} candidates")
            replies = self.proposer.propose(request)
            if len(replies) != request.k:
                raise RuntimeError(f"proposer {self.proposer.name} returned {len(replies)} replies, expected {request.k}")
            write_json(replies_path, [_saved_reply(r) for r in replies])
        results: list[Optional[Candidate]] = [None] * len(replies)
        jobs: list[tuple[int, Candidate, dict]] = []
        for k, reply in enumerate(replies):
            cand_dir = it_dir / f"cand_{k:02d}"
            cand_dir.mkdir(parents=True, exist_ok=True)
            if (cand_dir / "result.json").exists():
                results[k] = Candidate.from_dict(read_json(cand_dir / "result.json"))
                continue
            cand = self._validate(reply, Candidate(iteration=it, index=k, name=f"iter{it:02d}_cand{k:02d}", code=None,
                                                   cand_dir=str(cand_dir)))
            if cand.stage != "train":
                results[k] = self._finish(cand, None)
                self.log(f"  candidate {k}: failed at {cand.stage}: {cand.error_line()}")
                continue
            cfg = self.train_config(self.code_reward(cand.name, cand_dir / "code.py", str(self.search.reward_routing)),
                                    int(self.cfg.seed), cand.name)
            jobs.append((k, cand, cfg))

        def train_one(item: tuple[int, Candidate, dict]) -> tuple[int, Candidate]:
            k, cand, cfg = item
            return k, self._finish(cand, self._train_scored(cfg, Path(cand.cand_dir)))

        with ThreadPoolExecutor(max_workers=max(1, int(self.search.workers))) as pool:
            for k, cand in pool.map(train_one, jobs):
                results[k] = cand
                msg = f"fitness {cand.fitness:.3f}" if cand.ok else f"failed at train: {cand.error_line()}"
                self.log(f"  candidate {k}: {msg}")
        return [r for r in results if r is not None]

    # ------------------------------------------------------------------------------ preference
    def rank(self, results: list[Candidate], saved: Optional[list[str]] = None) -> list[Candidate]:
        """Successful candidates best first: by fitness, or by the teacher in preference mode.

        ``saved``: candidate names in the order a person already gave for these results (a resumed
        search); with the terminal teacher it is used instead of asking again.
        """
        ok = [r for r in results if r.ok]
        if self.preference == "terminal" and len(ok) > 1:
            if saved is not None and sorted(saved) == sorted(r.name for r in ok):
                by_name = {r.name: r for r in ok}
                return [by_name[name] for name in saved]
            for r in ok:
                r.gif = self._render(r)
            order = self.teacher([r.to_dict() for r in ok])
            if sorted(order) != list(range(len(ok))):
                raise ValueError(f"a ranking must list each of the {len(ok)} candidates once, got {order}")
            return [ok[i] for i in order]
        return sorted(ok, key=lambda r: (-(r.fitness if r.fitness == r.fitness else -math.inf), r.index))

    def _render(self, cand: Candidate) -> Optional[str]:
        """A GIF of one episode of the candidate's final policy (MiniGrid), for a person to judge."""
        try:
            return policy_gif(Path(str(cand.run_dir)), str(self.cfg.env.id), Path(cand.cand_dir) / "policy.gif",
                              seed=int(self.cfg.seed))
        except Exception as exc:  # noqa: BLE001 - a missing picture must not stop the search
            self.log(f"  (no GIF for {cand.name}: {exc})")
            return None

    # ------------------------------------------------------------------------------ the loop
    def preflight(self) -> None:
        """The proposer's endpoint check (if it has one), once, before any request or training.

        A failure writes ``report.md`` with the full error text, logs one short line and raises
        :class:`PreflightError`.
        """
        check = getattr(self.proposer, "preflight", None)
        if not callable(check):
            return
        try:
            check()
        except LLMRequestError as err:
            report = write_preflight_report(self.run_dir, str(err))
            self.log(f"{first_line(str(err), 160)} (full text: {report})")
            raise PreflightError(str(err), report) from None

    def run(self) -> dict[str, Any]:
        """Run (or resume) the search and the final evaluation; returns the summary dict."""
        self.preflight()
        state_path = self.run_dir / "search_state.json"
        state = read_json(state_path) if state_path.exists() else {"best": None, "iterations": []}
        write_json(self.run_dir / "env_context.json", {"text": self.ctx.text, "task": self.task, "metric": self.metric})
        best: Optional[Candidate] = Candidate.from_dict(state["best"]) if state["best"] else None
        done = {e["iteration"]: e for e in state["iterations"]}
        previous: list[Candidate] = []
        ranking: Optional[list[str]] = None
        feedback: Optional[str] = None
        for it in range(int(self.cfg.iterations)):
            request = ProposalRequest(self.ctx, self.task, int(self.cfg.candidates), it, int(self.cfg.seed) * 1000 + it * 100,
                                      best=best, results=previous, ranking=ranking, feedback=feedback)
            results = self.run_iteration(it, request)
            ranked = self.rank(results, (done.get(it) or {}).get("ranking"))
            if ranked and (best is None or self.preference == "terminal" or ranked[0].fitness > best.fitness):
                # with a person as teacher, their top choice of the newest iteration becomes the base
                best = ranked[0]
                (self.run_dir / "best_reward.py").write_text(str(best.code))
            ranking = [str(r.code) for r in ranked] if self.preference != "off" else None
            previous = results
            if it in done and (self.run_dir / f"iter_{it + 1:02d}" / "replies.json").exists():
                feedback = done[it].get("feedback")  # already sent with the next request: do not ask again
            else:
                feedback = self._feedback(it, best)
            entry = {"iteration": it, "ok": sum(r.ok for r in results), "failed": sum(not r.ok for r in results),
                     "best_fitness": ranked[0].fitness if ranked else None, "feedback": feedback,
                     "ranking": [r.name for r in ranked]}
            state["iterations"] = [e for e in state["iterations"] if e["iteration"] != it] + [entry]
            state["best"] = best.to_dict() if best is not None else None
            write_json(state_path, state)
            self.log(f"iteration {it}: {entry['ok']} trained, {entry['failed']} failed; "
                     f"best so far: {f'{best.name} fitness {best.fitness:.3f}' if best else 'none'}")
        final = self.final_evaluation(best)
        summary = {"env_id": str(self.cfg.env.id), "proposer": self.proposer.name, "metric": self.metric,
                   "iterations": state["iterations"], "best": best.public() if best is not None else None,
                   "final": final, "run_dir": str(self.run_dir)}
        write_json(self.run_dir / "summary.json", summary)
        summary["report"] = str(write_report(self.run_dir))
        write_json(self.run_dir / "summary.json", summary)
        return summary

    def _feedback(self, it: int, best: Optional[Candidate]) -> Optional[str]:
        mode = str(self.search.feedback)
        if mode == "none" or it + 1 >= int(self.cfg.iterations):
            return None
        if mode == "terminal":
            return self.feedback_fn(it, best.to_dict() if best is not None else None) or None
        path = Path(mode)
        if not path.exists():
            raise FileNotFoundError(f"search.feedback={mode!r}: expected none, terminal or an existing text file")
        return path.read_text().strip() or None

    def final_evaluation(self, best: Optional[Candidate]) -> dict[str, Any]:
        """Re-train the best reward and the two baselines on fresh seeds with the same budget."""
        seeds = [int(self.cfg.seed) + 1000 + j for j in range(int(self.search.reeval_seeds))]
        final_dir = self.run_dir / "final"
        arms: dict[str, dict] = {}
        if best is not None:
            code_path = self.run_dir / "best_reward.py"
            arms["best"] = self.code_reward("best", code_path, str(self.search.reward_routing))
        if bool(self.search.baselines):
            arms["env_reward"] = {"name": "env_reward"}
            if self.metric == "success":
                arms["task_metric"] = {"name": "task_metric",
                                       "module": {"_target_": "rewards.llm.reward_module.TaskMetricReward"}}
        jobs = [(arm, seed) for arm in arms for seed in seeds]

        def train_one(item: tuple[str, int]) -> tuple[str, int, dict]:
            arm, seed = item
            # the best arm's runs are keyed by its code, so a resumed search that found a better reward
            # re-trains it instead of reusing the runs of the previous best
            tag = f"best-{best.code_hash}" if arm == "best" and best is not None else arm
            job_dir = final_dir / f"{tag}_seed{seed}"
            if (job_dir / "result.json").exists():
                return arm, seed, read_json(job_dir / "result.json")
            job = self._train_scored(self.train_config(arms[arm], seed, f"{arm}_seed{seed}"), job_dir)
            res: dict[str, Any] = {"ok": job.ok, "error": job.error, "wall_s": job.wall_s}
            if job.ok and job.stats is not None:
                res.update(fitness=job.fitness, success=job.stats.success, metric_curve=job.stats.metric)
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


def _terminal_teacher(candidates: list[dict]) -> list[int]:
    print("\nRank the candidates' behaviour, best first (GIFs of one episode each):")
    for i, r in enumerate(candidates):
        print(f"  [{i}] {r['name']}: {r.get('gif') or '(no GIF)'}")
    answer = input("ranking (e.g. 2 0 1): ")
    return [int(x) for x in answer.replace(",", " ").split()]


def _terminal_feedback(it: int, best: Optional[dict]) -> Optional[str]:
    where = best["cand_dir"] if best else "(none)"
    return input(f"\nfeedback on iteration {it}'s best reward ({where}), empty to skip: ").strip() or None
