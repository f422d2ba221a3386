"""The exploration benchmark's bookkeeping and report, apart from training (``bench_exploration.py``).

A sweep directory ``benchmarks/results/exploration/<name>/`` holds one run directory per
(task, bonus, seed), named as the training app names runs (``<env id>-ppo-<reward>-seed<N>``), and a
manifest ``sweep.json``: the protocol (experiment config, frames, evaluation, overrides), the grid
asked for (tasks x rewards x seeds, the union over every ``run`` into the sweep) and one entry per
invocation (start, end, hardware, how it ended).

* :func:`run_status` decides what a re-run does with each run directory: skip it (``complete``: its
  ``summary.json`` is there and reached the frame budget), resume it (``resume``: checkpoints or logs
  but no complete summary), start it (``new``), or leave it alone (``running``: a live training
  process still owns it).
* :func:`collect` reads every run of one or more sweeps, finished or not; :func:`aggregate` computes
  the IQM and mean of final success with stratified-bootstrap CIs and :func:`performance_profiles`
  the score distributions, both with ``rliable`` (Agarwal et al. 2021); :func:`markdown_report`
  writes the tables (seeds run against seeds asked, unfinished and missing runs named), the published
  figures beside ours, the hardware budget, and the plots (learning curves, coverage curves,
  aggregate IQM curve, performance profile).

Everything here reads files; nothing trains, so the report works on any partial sweep.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

COMPLETE, RESUME, NEW, RUNNING = "complete", "resume", "new", "running"
MANIFEST = "sweep.json"
PID_FILE = "bench.pid"
SUCCESS, RETURN = "eval/success_rate", "eval/return_mean"
COVERAGE_EPISODE, COVERAGE_EVER = "explore/episode_cells_visited", "explore/cells_ever_visited"
SUMMARY_KEYS = ("env_id", "reward", "seed", "total_timesteps", "wall_time_s", "eval_success_rate")


def sanitize(text: str) -> str:
    """As the training app's ``${sanitize:...}`` resolver (run names from env ids)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))


def run_dir_name(task: str, reward: str, seed: int, algo: str = "ppo") -> str:
    """The run directory of one (task, reward, seed): the training app's default ``run_name``."""
    return f"{sanitize(task)}-{algo}-{reward}-seed{int(seed)}"


# ------------------------------------------------------------------------------------ run state
def read_summary(run_dir: Path) -> Optional[dict[str, Any]]:
    """The run's ``summary.json`` if it is there, parses, and has the keys the report needs."""
    path = Path(run_dir) / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or any(k not in summary for k in SUMMARY_KEYS):
        return None
    return summary


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_pid(run_dir: Path) -> Optional[int]:
    """The pid of a live training process that the benchmark started in ``run_dir``, or None (no pid
    file, a stale one, or a pid now reused by another program)."""
    try:
        pid = int(json.loads((Path(run_dir) / PID_FILE).read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return pid  # no /proc: trust the pid
    return pid if "rlcore.train" in cmdline else None


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The run's numbered checkpoints ``(frames, path)``, oldest first."""
    out = []
    for path in (Path(run_dir) / "checkpoints").glob("ckpt_*.pt"):
        try:
            out.append((int(path.stem.split("_", 1)[1]), path))
        except ValueError:
            continue
    return sorted(out)


def run_status(run_dir: Path, frames: int) -> tuple[str, str]:
    """``(status, why)`` of one run directory for a sweep with a budget of ``frames``.

    ``complete``: ``summary.json`` is complete and ``total_timesteps >= frames`` (skip it);
    ``running``: a live ``rlcore.train`` process started by the benchmark owns it (leave it);
    ``resume``: checkpoints, a progress log or a summary short of ``frames`` (continue it with
    ``resume=true``); ``new``: nothing there yet.
    """
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    if summary is not None and int(summary["total_timesteps"]) >= int(frames):
        return COMPLETE, f"summary.json at {int(summary['total_timesteps']):,} frames"
    pid = owner_pid(run_dir)
    if pid is not None:
        return RUNNING, f"training process {pid} is running in it"
    ckpts = checkpoints(run_dir)
    if summary is not None:
        return RESUME, f"summary.json at {int(summary['total_timesteps']):,} of {int(frames):,} frames"
    if ckpts:
        return RESUME, f"{len(ckpts)} checkpoint(s), latest at {ckpts[-1][0]:,} frames, no summary.json"
    if (run_dir / "progress.csv").exists():
        return RESUME, "progress.csv but no checkpoint: restarts from frame 0"
    return NEW, "not started"


def plan(sweep: Path, tasks: Sequence[str], rewards: Sequence[str], seeds: Sequence[int],
         frames: int) -> list[dict[str, Any]]:
    """One entry per (task, reward, seed) of the grid: its run directory, status and why."""
    out = []
    for task in tasks:
        for reward in rewards:
            for seed in seeds:
                run_dir = Path(sweep) / run_dir_name(task, reward, seed)
                status, why = run_status(run_dir, frames)
                out.append({"task": task, "reward": reward, "seed": int(seed), "run_dir": run_dir,
                            "status": status, "why": why})
    return out


# ------------------------------------------------------------------------------------- manifest
def load_manifest(sweep: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads((Path(sweep) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def protocol_mismatch(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The protocol keys whose values differ between a sweep's manifest and a new invocation."""
    return [f"{k}: sweep has {old.get(k)!r}, this run asks {new.get(k)!r}"
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def merge_grid(old: Optional[dict[str, list]], tasks: Sequence[str], rewards: Sequence[str],
               seeds: Sequence[int]) -> dict[str, list]:
    """The union of a manifest's grid and a new invocation's, in first-seen order."""
    old = old or {}

    def union(a: Iterable, b: Iterable) -> list:
        return list(dict.fromkeys([*a, *b]))

    return {"tasks": union(old.get("tasks", []), tasks), "rewards": union(old.get("rewards", []), rewards),
            "seeds": sorted(set(old.get("seeds", [])) | {int(s) for s in seeds})}


def hardware() -> dict[str, Any]:
    """The machine a sweep ran on: CPU model, cores visible and usable, torch and its device."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cpu_count": os.cpu_count()}
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cpus_usable"] = os.cpu_count()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


# ---------------------------------------------------------------------------------- reading runs
def read_progress(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``column -> (frames, values)`` for every column of a ``progress.csv``, empty cells skipped."""
    cols: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    x = int(float(row["time/timesteps"]))
                except (KeyError, TypeError, ValueError):
                    continue
                for key, value in row.items():
                    if key == "time/timesteps" or value in ("", None):
                        continue
                    try:
                        v = float(value)
                    except ValueError:
                        continue
                    if math.isfinite(v):
                        cols[key][0].append(x)
                        cols[key][1].append(v)
    except OSError:
        return {}
    return {k: (np.asarray(xs, dtype=np.int64), np.asarray(ys, dtype=np.float64)) for k, (xs, ys) in cols.items()}


def _config_value(config: Optional[dict], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@dataclass
class Run:
    """One run of a sweep as found on disk (or only asked for)."""

    task: str
    reward: str
    seed: int
    run_dir: Path
    sweep: str
    status: str                       # complete | partial | missing
    bonus: str = ""                   # the reward config's name (``reward`` is the report's label)
    summary: Optional[dict] = None
    config: Optional[dict] = None     # the run's resolved config.yaml, as a dict
    curves: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bonus = self.bonus or self.reward

    @property
    def success(self) -> Optional[float]:
        return float(self.summary["eval_success_rate"]) if self.summary else None

    @property
    def frames(self) -> int:
        if self.summary:
            return int(self.summary["total_timesteps"])
        xs = [int(c[0][-1]) for c in self.curves.values() if len(c[0])]
        xs += [n for n, _ in checkpoints(self.run_dir)] if self.status == "partial" else []
        return max(xs) if xs else 0

    def curve(self, column: str = SUCCESS) -> tuple[np.ndarray, np.ndarray]:
        """Evaluation points of ``column``, with the final evaluation of a complete run appended
        when it lies beyond the last logged one."""
        xs, ys = self.curves.get(column, (np.zeros(0, np.int64), np.zeros(0)))
        final_key = {SUCCESS: "eval_success_rate", RETURN: "eval_return_mean"}.get(column)
        if self.summary and final_key and (len(xs) == 0 or xs[-1] < int(self.summary["total_timesteps"])):
            xs = np.append(xs, int(self.summary["total_timesteps"]))
            ys = np.append(ys, float(self.summary[final_key]))
        return xs, ys

    def frames_to(self, threshold: float = 0.9) -> Optional[int]:
        xs, ys = self.curve(SUCCESS)
        hit = np.nonzero(ys >= threshold)[0]
        return int(xs[hit[0]]) if len(hit) else None

    def final_coverage(self, column: str = COVERAGE_EPISODE, last: int = 5) -> Optional[float]:
        xs, ys = self.curves.get(column, (None, None))
        return float(np.mean(ys[-last:])) if ys is not None and len(ys) else None


def _load_yaml(path: Path) -> Optional[dict]:
    if not path.exists():
        return None
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # type: ignore[return-value]
    except Exception:
        return None


def _identify(run_dir: Path, summary: Optional[dict], config: Optional[dict]) -> Optional[tuple[str, str, int]]:
    if summary:
        return str(summary["env_id"]), str(summary["reward"]), int(summary["seed"])
    if config:
        task, reward, seed = (_config_value(config, k) for k in ("env.id", "reward.name", "seed"))
        if task is not None and reward is not None and seed is not None:
            return str(task), str(reward), int(seed)
    return None


def collect(sweeps: Sequence[Path]) -> tuple[list[Run], dict[str, Any]]:
    """Every run of ``sweeps``: complete (a summary), partial (logs but no summary) and missing (in a
    manifest's grid, no directory with logs).

    A bonus run by sweeps with different protocols (their manifests' ``protocol`` differ) is labelled
    ``<reward> [<sweep>]`` per sweep, so runs of two protocols never share a row or an aggregate;
    sweeps without a manifest count as one protocol. ``info``: ``grid`` (tasks and reward labels,
    asked or found, in order), ``asked`` (the ``(task, label, seed)`` the manifests ask for; a sweep
    without a manifest asks for nothing beyond what it holds) and ``manifests`` (sweep -> manifest)."""
    manifests: dict[str, Optional[dict]] = {}
    found: dict[str, list[Run]] = {}
    asked_by: dict[str, set[tuple[str, str, int]]] = {}
    for sweep in map(Path, sweeps):
        manifest = load_manifest(sweep)
        manifests[sweep.name] = manifest
        g = (manifest or {}).get("grid")
        asked_by[sweep.name] = {(t, r, int(x)) for t in g["tasks"] for r in g["rewards"] for x in g["seeds"]} if g else set()
        found[sweep.name] = []
        if not sweep.is_dir():
            continue
        for run_dir in sorted(p for p in sweep.iterdir() if p.is_dir()):
            summary = read_summary(run_dir)
            config = _load_yaml(run_dir / "config.yaml")
            key = _identify(run_dir, summary, config)
            if key is None or not ((run_dir / "progress.csv").exists() or summary):
                continue
            found[sweep.name].append(Run(*key, run_dir=run_dir, sweep=sweep.name,
                                         status="complete" if summary else "partial", summary=summary, config=config,
                                         curves=read_progress(run_dir / "progress.csv")))
    signature = {name: json.dumps((m or {}).get("protocol"), sort_keys=True) for name, m in manifests.items()}
    protocols_of: dict[str, set[str]] = defaultdict(set)
    for name in manifests:
        for bonus in {r.reward for r in found[name]} | {k[1] for k in asked_by[name]}:
            protocols_of[bonus].add(signature[name])

    def label(bonus: str, sweep: str) -> str:
        return f"{bonus} [{sweep}]" if len(protocols_of[bonus]) > 1 else bonus

    runs: dict[tuple[str, str, int], Run] = {}
    asked: set[tuple[str, str, int]] = set()
    order: dict[str, list] = {"tasks": [], "rewards": [], "seeds": []}
    for name, manifest in manifests.items():
        g = (manifest or {}).get("grid")
        if g:
            order = merge_grid(order, g["tasks"], [label(r, name) for r in g["rewards"]], g["seeds"])
        asked |= {(t, label(r, name), x) for t, r, x in asked_by[name]}
        for run in found[name]:
            run.bonus, run.reward = run.reward, label(run.reward, name)
            key = (run.task, run.reward, run.seed)
            old = runs.get(key)
            if old is None or (old.status != "complete" and run.status == "complete"):
                runs[key] = run
    order = merge_grid(order, [k[0] for k in runs], [k[1] for k in runs], [k[2] for k in runs])
    for key in asked - set(runs):
        runs[key] = Run(*key, run_dir=Path(), sweep="", status="missing")
    return (sorted(runs.values(), key=lambda r: (r.task, r.reward, r.seed)),
            {"grid": order, "asked": asked, "manifests": manifests})


def reward_order(rewards: Iterable[str]) -> list[str]:
    """``none`` (and ``none [<sweep>]``) first, then the rest alphabetically."""
    return sorted(set(rewards), key=lambda k: (k.split(" [")[0] != "none", k))


# ------------------------------------------------------------------------------------- rliable
@dataclass
class Selection:
    """The complete runs of one reward that enter its aggregate: ``scores`` float[n_seeds, n_tasks],
    the same ``n_seeds`` lowest-numbered complete seeds on every task that has any (rliable's
    stratified bootstrap needs one matrix), and the complete runs left out to make it rectangular."""

    reward: str
    tasks: list[str]
    seeds_per_task: dict[str, list[int]]
    scores: np.ndarray
    left_out: list[Run]


def select_scores(runs: Sequence[Run], reward: str, tasks: Sequence[str]) -> Optional[Selection]:
    by_task = {t: sorted((r for r in runs if r.reward == reward and r.task == t and r.status == "complete"),
                         key=lambda r: r.seed) for t in tasks}
    used = [t for t in tasks if by_task[t]]
    if not used:
        return None
    n = min(len(by_task[t]) for t in used)
    scores = np.array([[by_task[t][i].success for t in used] for i in range(n)], dtype=np.float64)
    left = [r for t in used for r in by_task[t][n:]]
    return Selection(reward, used, {t: [r.seed for r in by_task[t][:n]] for t in used}, scores, left)


def aggregate(selections: Sequence[Selection], reps: int = 2000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """IQM and mean of final success per reward, with 95% stratified-bootstrap CIs (``rliable``:
    ``get_interval_estimates``; seeds resampled within each task)."""
    from rliable import library as rly
    from rliable import metrics

    if not selections:
        return {}
    scores = {s.reward: s.scores for s in selections}

    def func(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    with _rliable(seed):
        points, cis = rly.get_interval_estimates(scores, func, reps=reps, random_state=np.random.RandomState(seed))
    return {r: {"iqm": float(points[r][0]), "iqm_ci": (float(cis[r][0, 0]), float(cis[r][1, 0])),
                "mean": float(points[r][1]), "mean_ci": (float(cis[r][0, 1]), float(cis[r][1, 1]))} for r in scores}


def performance_profiles(selections: Sequence[Selection], taus: np.ndarray, reps: int = 2000, seed: int = 0):
    """``rliable.library.create_performance_profile`` over final success: for each reward, the
    fraction of runs with success > tau, and its stratified-bootstrap CI."""
    from rliable import library as rly

    with _rliable(seed):
        return rly.create_performance_profile({s.reward: s.scores for s in selections}, taus, reps=reps)


@contextlib.contextmanager
def _rliable(seed: int):
    """Reproducible, quiet rliable calls: rliable 1.2 draws its stratified resamples from numpy's
    global RNG (``np.random.choice``, whatever ``random_state`` says), so that RNG is seeded here and
    restored after; and arch 7 warns that the ``random_state`` rliable passes it is deprecated."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"arch\.")
            yield
    finally:
        np.random.set_state(state)


def curve_matrix(runs_by_task: dict[str, list[Run]], grid: np.ndarray, column: str = SUCCESS) -> np.ndarray:
    """float[n_seeds, n_tasks, len(grid)]: each run's evaluation at each grid frame (the first
    evaluation at or after it, which is the one that frame triggered; the last one past the end)."""
    tasks = list(runs_by_task)
    n = min(len(v) for v in runs_by_task.values())
    out = np.zeros((n, len(tasks), len(grid)))
    for j, t in enumerate(tasks):
        for i, run in enumerate(runs_by_task[t][:n]):
            xs, ys = run.curve(column)
            idx = np.minimum(np.searchsorted(xs, grid, side="left"), len(xs) - 1)
            out[i, j] = ys[idx]
    return out


# ------------------------------------------------------------------------------ published figures
#: Published results beside which the report puts ours. ``match``: the runs of ours that follow the
#: same recipe (reward name and config values in the run's config.yaml); figures are as quoted in the
#: benchmark's issue, not re-measured here, and their protocols differ from ours (named per row).
PUBLISHED: list[dict[str, Any]] = [
    {"source": "RLeXplore (Yuan et al., TMLR 2025)", "task": "MiniGrid-DoorKey-16x16-v0", "bonus": "E3B",
     "published": "~0.98", "match": {"reward": "e3b", "task": True, "config": {"reward.module.normalize": True}},
     "protocol": "RLLTE PPO, 10M frames, 256 envs x 32 steps, lr 2.5e-4, clip 0.1, extrinsic x100, intrinsic "
                 "0.25 b/std(b) added to the extrinsic reward (one value stream), egocentric view without heading "
                 "(the `rlexplore_minigrid` experiment approximates it)"},
    {"source": "RLeXplore (Yuan et al., TMLR 2025)", "task": "MiniGrid-DoorKey-16x16-v0", "bonus": "RND",
     "published": "~0.02", "match": {"reward": "rnd", "task": True, "config": {"reward.module.normalize": True}},
     "protocol": "as above"},
    {"source": "RLeXplore (Yuan et al., TMLR 2025)", "task": "MiniGrid-DoorKey-16x16-v0",
     "bonus": "E3B, no intrinsic reward normalisation", "published": "~0.04",
     "match": {"reward": "e3b", "task": True, "config": {"reward.module.normalize": False}},
     "protocol": "as above, intrinsic reward not divided by its std (here: `reward.module.normalize=false`)"},
    {"source": "Henaff et al. 2022 (NeurIPS), E3B", "task": "contextual MDPs (MiniHack, VizDoom, Habitat)",
     "bonus": "E3B", "published": "finding: the elliptical episodic bonus over inverse-dynamics features "
                                  "explores procedurally generated tasks where global and count-based bonuses fail",
     "match": {"reward": "e3b"}, "protocol": "IMPALA-style agents, their budgets; no MiniGrid DoorKey figure quoted"},
    {"source": "Henaff et al. 2023 (ICML), global and episodic bonuses", "task": "procedurally generated MiniGrid, "
     "MiniHack", "bonus": "episodic vs global vs product",
     "published": "finding: episodic bonuses (episodic counts, E3B) win where episodes share little structure, "
                  "global ones (RND, counts) where they share much; the product (E3B x RND) is robust across both",
     "match": {"reward": "e3b_x_rnd"}, "protocol": "their agents and budgets; qualitative, no figure quoted"},
]


def matching_runs(runs: Sequence[Run], entry: dict[str, Any]) -> list[Run]:
    """The complete runs that follow a published entry's recipe: its reward, its task where the entry
    names one (``match.task``), and the config values it names."""
    want = entry["match"]
    out = []
    for r in runs:
        if r.status != "complete" or r.bonus != want["reward"] or (want.get("task") and r.task != entry["task"]):
            continue
        if any(_config_value(r.config, k) != v for k, v in want.get("config", {}).items()):
            continue
        out.append(r)
    return out


# -------------------------------------------------------------------------------------- report
def _fmt_frames(x: Optional[int]) -> str:
    return f"{x:,}" if x else "—"


def _protocol_names(info: dict[str, Any]) -> dict[str, str]:
    names = {}
    for sweep, manifest in info["manifests"].items():
        proto = (manifest or {}).get("protocol") or {}
        names[sweep] = proto.get("experiment") or ("library defaults + overrides" if manifest else "unknown (no sweep.json)")
    return names


def markdown_report(sweeps: Sequence[Path], out_dir: Path, reps: int = 2000, plots: bool = True) -> str:
    """The benchmark's report over ``sweeps`` as markdown; plots go to ``out_dir``."""
    runs, info = collect(sweeps)
    if not any(r.status != "missing" for r in runs):
        raise SystemExit(f"no runs with logs under {', '.join(map(str, sweeps))}")
    grid = info["grid"]
    tasks = list(grid["tasks"])
    rewards = reward_order(grid["rewards"])
    names = " + ".join(Path(s).name for s in sweeps)
    protocols = _protocol_names(info)
    lines = [f"# Exploration benchmark: {names}", ""]
    for sweep, manifest in info["manifests"].items():
        proto = (manifest or {}).get("protocol")
        if proto:
            lines.append(f"* `{sweep}`: protocol `{protocols[sweep]}`; " + ", ".join(
                f"{k}={v}" for k, v in proto.items() if k != "experiment" and v not in (None, [], "")))
        else:
            lines.append(f"* `{sweep}`: no sweep.json (made before the manifest existed): seeds asked are the seeds found")
    lines.append("")

    by = defaultdict(list)
    for r in runs:
        by[(r.task, r.reward)].append(r)
    has_coverage = any(COVERAGE_EPISODE in r.curves for r in runs)
    lines += ["## Final evaluation success per task and bonus", "",
              "Success rate of the final evaluation (episodes as configured, 64 by default). *seeds*: complete "
              "runs of the seeds asked for; unfinished and missing runs are named below the table and enter no "
              "aggregate.", ""]
    head = ("| task | reward | frames | seeds | success per seed | mean | frames to 0.9 (per seed) | "
            + ("episode coverage (final) | " if has_coverage else "") + "wall time per run (s, mean) | fps (mean) |")
    align = ["---", "---", "---:", "---:", "---", "---:", "---"] + (["---"] if has_coverage else []) + ["---:", "---:"]
    lines += [head, "|" + "|".join(align) + "|"]
    short = []
    for task in tasks:
        for reward in rewards:
            rs = sorted(by.get((task, reward), []), key=lambda r: r.seed)
            if not rs:
                continue
            done = [r for r in rs if r.status == "complete"]
            n_asked = len(rs)  # the seeds asked for (missing ones included) and any others found
            seeds = f"{len(done)} of {n_asked}" if len(done) < n_asked else f"{len(done)}"
            if len(done) < n_asked:
                short.append((task, reward, len(done), n_asked,
                              [r for r in rs if r.status == "partial"], [r for r in rs if r.status == "missing"]))
            if not done:
                lines.append(f"| {task} | {reward} | — | {seeds} | — | — | — | " + ("— | " if has_coverage else "")
                             + "— | — |")
                continue
            succ = [r.success for r in done]
            frames = sorted({r.frames for r in done})
            cov = ""
            if has_coverage:
                vals = [r.final_coverage() for r in done]
                cov = ", ".join("—" if v is None else f"{v:.2f}" for v in vals) + " | "
            lines.append(
                f"| {task} | {reward} | {', '.join(f'{f:,}' for f in frames)} | {seeds} | "
                f"{', '.join(f'{x:.2f}' for x in succ)} | {np.mean(succ):.2f} | "
                f"{', '.join(_fmt_frames(r.frames_to(0.9)) for r in done)} | {cov}"
                f"{np.mean([r.summary['wall_time_s'] for r in done]):,.0f} | "
                f"{np.mean([r.summary.get('fps', 0.0) for r in done]):,.0f} |")
    if short:
        lines += ["", "**Fewer seeds than asked** (the aggregates below use the complete runs only):", ""]
        for task, reward, n_done, n_asked, partial, missing in short:
            bits = []
            if partial:
                bits.append("unfinished: " + ", ".join(f"seed {r.seed} at {r.frames:,} frames" for r in partial))
            if missing:
                bits.append("not started: " + ", ".join(f"seed {r.seed}" for r in missing))
            lines.append(f"* {task} / {reward}: {n_done} of {n_asked} complete" + (f" ({'; '.join(bits)})" if bits else ""))
    if not has_coverage:
        lines += ["", "No run logged a coverage metric (`explore/episode_cells_visited`: the training app logs it "
                  "for grid envs unless `diagnostics.visitation=false`), so there are no coverage curves."]

    selections = [s for s in (select_scores(runs, r, tasks) for r in rewards) if s is not None]
    agg = aggregate(selections, reps=reps) if selections else {}
    lines += ["", "## Aggregate over tasks x seeds (rliable)", "",
              f"Interquartile mean and mean of final success, 95% stratified-bootstrap CIs ({reps} resamples: "
              "seeds resampled within each task; `rliable.library.get_interval_estimates`). A reward enters with "
              "the same number of complete seeds on every task it has runs on (the lowest-numbered ones); "
              "rows covering fewer tasks than the sweep are not comparable with the others.", "",
              "| reward | tasks | seeds per task | runs | IQM | 95% CI | mean | 95% CI | left out |",
              "|---|---:|---:|---:|---:|---|---:|---|---|"]
    if not selections:
        lines[-2:] = ["No complete run yet: nothing to aggregate."]
    for s in selections:
        a = agg[s.reward]
        n = s.scores.shape[0]
        note = ", ".join(f"{r.task.replace('MiniGrid-', '')} seed {r.seed}" for r in s.left_out) or "—"
        cover = f"{len(s.tasks)} of {len(tasks)}" if len(s.tasks) < len(tasks) else f"{len(s.tasks)}"
        lines.append(f"| {s.reward} | {cover} | {n}{' (CI degenerate)' if n == 1 else ''} | {s.scores.size} | "
                     f"{a['iqm']:.2f} | [{a['iqm_ci'][0]:.2f}, {a['iqm_ci'][1]:.2f}] | {a['mean']:.2f} | "
                     f"[{a['mean_ci'][0]:.2f}, {a['mean_ci'][1]:.2f}] | {note} |")

    lines += ["", "## Published figures beside ours", "",
              "Published values are as quoted in the benchmark's issue (not re-measured here); each row names its "
              "protocol. *Ours*: complete runs of this report that follow the same recipe (bonus and the config "
              "values named), final success and final evaluation return, mean over seeds, with the protocol of their "
              "sweep.", "",
              "| source | task | bonus | published | their protocol | ours |", "|---|---|---|---|---|---|"]
    for entry in PUBLISHED:
        mine = matching_runs(runs, entry)
        if mine:
            groups = defaultdict(list)
            for r in mine:
                groups[(r.task, protocols.get(r.sweep, r.sweep))].append(r)
            ours = "; ".join(
                f"{t.replace('MiniGrid-', '')}: success {np.mean([r.success for r in g]):.2f}, return "
                f"{np.mean([r.summary['eval_return_mean'] for r in g]):.2f} ({len(g)} seed{'s' if len(g) > 1 else ''}, "
                f"{g[0].frames:,} frames, `{proto}`)" for (t, proto), g in groups.items())
        else:
            ours = "no matching complete run in this report"
        lines.append(f"| {entry['source']} | {entry['task']} | {entry['bonus']} | {entry['published']} | "
                     f"{entry['protocol']} | {ours} |")

    lines += ["", "## Runs, wall time and hardware", "",
              "| task | reward | seed | status | frames | success | return | wall time (s) | fps | resumed | config |",
              "|---|---|---:|---|---:|---:|---:|---:|---:|---|---|"]
    for r in runs:
        if r.status == "missing":
            lines.append(f"| {r.task} | {r.reward} | {r.seed} | not started | — | — | — | — | — | — | — |")
            continue
        s = r.summary or {}
        cfg = "config.yaml" if (r.run_dir / "config.yaml").exists() else "—"
        lines.append(
            f"| {r.task} | {r.reward} | {r.seed} | {r.status} | {r.frames:,} | "
            f"{'—' if not s else format(s['eval_success_rate'], '.2f')} | "
            f"{'—' if not s else format(s.get('eval_return_mean', float('nan')), '.2f')} | "
            f"{'—' if not s else format(s['wall_time_s'], ',.0f')} | {'—' if not s else format(s.get('fps', 0), ',.0f')} | "
            f"{'yes' if s.get('resumed_from') else ('—' if not s else 'no')} | {r.sweep}/{r.run_dir.name}/{cfg} |")
    done = [r for r in runs if r.status == "complete"]
    job_s = sum(float(r.summary["wall_time_s"]) for r in done)
    lines += ["", f"Complete runs: {len(done)}; their training wall time adds up to {job_s:,.0f} s "
              f"({job_s / 3600:.2f} job-hours; per run it is the run's own clock, resumed runs included)."]
    for sweep, manifest in info["manifests"].items():
        for inv in (manifest or {}).get("invocations", []):
            hw = inv.get("hardware", {})
            lines.append(
                f"* `{sweep}` invocation {inv.get('started', '?')} -> {inv.get('finished', 'still running or killed')}: "
                f"{inv.get('ended', '?')}, {inv.get('launched', 0)} run(s) launched, {inv.get('jobs', '?')} at a time, "
                f"{inv.get('wall_s', float('nan')):,.0f} s; {hw.get('cpu_model', 'cpu ?')}, "
                f"{hw.get('cpus_usable', '?')} of {hw.get('cpu_count', '?')} cores usable"
                + (f", GPUs: {', '.join(hw['gpus'])}" if hw.get("gpus") else "") + f", torch {hw.get('torch', '?')}")

    if plots:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = plot_all(runs, tasks, rewards, selections, out_dir, reps=reps, coverage=has_coverage)
        lines += ["", "## Plots", ""] + [f"* {label}: `{p}`" for label, p in paths]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------- plots
def plot_all(runs: Sequence[Run], tasks: Sequence[str], rewards: Sequence[str], selections: Sequence[Selection],
             out_dir: Path, reps: int = 2000, coverage: bool = True) -> list[tuple[str, Path]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {r: plt.get_cmap("tab10")(i % 10) for i, r in enumerate(rewards)}
    paths = []
    rows = [(SUCCESS, "eval success rate"), (RETURN, "eval return")]
    if coverage:
        rows.append((COVERAGE_EPISODE, "episode coverage (cells visited, mean of 10 iterations)"))
    fig, axes = plt.subplots(len(rows), len(tasks), figsize=(5 * len(tasks), 3.6 * len(rows)), squeeze=False)
    for col, task in enumerate(tasks):
        for row, (key, label) in enumerate(rows):
            ax = axes[row][col]
            for reward in rewards:
                rs = [r for r in runs if r.task == task and r.reward == reward and r.status != "missing"]
                done = [r for r in rs if r.status == "complete"]
                if done:
                    grid = _common_grid(done, key)
                    if len(grid):
                        ys = np.array([_hold(r, key, grid) for r in done])
                        ax.plot(grid, ys.mean(0), color=colors[reward], label=f"{reward} ({len(done)} seeds)")
                        ax.fill_between(grid, ys.min(0), ys.max(0), color=colors[reward], alpha=0.2)
                for r in rs:
                    if r.status == "partial":
                        xs, ys = r.curve(key)
                        ys = _smooth(ys) if key == COVERAGE_EPISODE else ys
                        ax.plot(xs, ys, color=colors[reward], ls="--", lw=0.8,
                                label=f"{reward} seed {r.seed} (unfinished)")
            ax.set_title(task.replace("MiniGrid-", ""))
            ax.set_xlabel("environment frames")
            ax.set_ylabel(label)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "learning_curves.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(("learning curves (mean over complete seeds, min-max band; unfinished runs dashed)"
                  + (" and coverage curves" if coverage else ""), path))

    if selections:
        from rliable import plot_utils

        taus = np.linspace(0.0, 1.0, 51)
        profiles, cis = performance_profiles(selections, taus, reps=reps)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        plot_utils.plot_performance_profiles(profiles, taus, performance_profile_cis=cis, ax=ax,
                                             colors={r: colors[r] for r in profiles},
                                             xlabel=r"final eval success $\tau$",
                                             ylabel=r"fraction of runs with success $> \tau$")
        ax.legend(handles=_handles(profiles, colors), fontsize=8, loc="upper right")
        fig.tight_layout()
        path = out_dir / "performance_profile.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(("performance profile of final success (rliable, 95% CIs)", path))

        curve_path = _plot_iqm_curves(runs, selections, out_dir, colors, reps)
        if curve_path is not None:
            paths.append(("aggregate IQM of eval success over frames (rliable, 95% CIs)", curve_path))
    return paths


def _handles(names: Iterable[str], colors: dict) -> list:
    from matplotlib.lines import Line2D

    return [Line2D([0], [0], color=colors[n], label=n) for n in names]


def _smooth(ys: np.ndarray, window: int = 10) -> np.ndarray:
    """Trailing mean over ``window`` points (per-iteration metrics such as coverage are noisy)."""
    if len(ys) == 0:
        return ys
    c = np.cumsum(np.insert(ys, 0, 0.0))
    idx = np.arange(1, len(ys) + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def _common_grid(runs: Sequence[Run], key: str) -> np.ndarray:
    """The frames of the run with the fewest points of ``key``, up to where every run has data."""
    curves = [r.curve(key) for r in runs]
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return np.zeros(0, np.int64)
    xs = min((c[0] for c in curves), key=len)
    end = min(c[0][-1] for c in curves)
    return xs[xs <= end]


def _hold(run: Run, key: str, grid: np.ndarray) -> np.ndarray:
    xs, ys = run.curve(key)
    if key == COVERAGE_EPISODE:
        ys = _smooth(ys)
    idx = np.minimum(np.searchsorted(xs, grid, side="left"), len(xs) - 1)
    return ys[idx]


def _plot_iqm_curves(runs, selections, out_dir: Path, colors, reps: int) -> Optional[Path]:
    """IQM of eval success at each evaluation frame over each reward's selected runs (rliable), on
    the frames every selected run has reached."""
    import matplotlib.pyplot as plt
    from rliable import library as rly
    from rliable import metrics, plot_utils

    groups = {s.reward: {t: sorted((r for r in runs if r.reward == s.reward and r.task == t and r.status == "complete"
                                    and r.seed in s.seeds_per_task[t]), key=lambda r: r.seed) for t in s.tasks}
              for s in selections}
    frames = _common_grid([r for g in groups.values() for rs in g.values() for r in rs], SUCCESS)
    if len(frames) < 2:
        return None
    scores = {k: curve_matrix(g, frames) for k, g in groups.items()}

    def iqm_per_frame(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x[..., f]) for f in range(x.shape[-1])])

    with _rliable(0):
        est, cis = rly.get_interval_estimates(scores, iqm_per_frame, reps=max(200, reps // 4),
                                              random_state=np.random.RandomState(0))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_sample_efficiency_curve(frames / 1e6, est, cis, algorithms=list(est), ax=ax,
                                            colors={k: colors[k] for k in est},
                                            xlabel="environment frames (millions)", ylabel="IQM eval success",
                                            labelsize="medium", ticklabelsize="small")
    ax.legend(handles=_handles(est, colors), fontsize=8)
    fig.tight_layout()
    path = out_dir / "iqm_curve.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
