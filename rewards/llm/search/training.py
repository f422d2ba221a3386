"""Training runs of the search: one config in a worker process, its curves read back from the run directory.

:func:`run_training_job` writes the full training config to ``job.yaml`` and starts
``python -m rewards.llm.search.worker`` (:mod:`rewards.llm.search.worker`, which calls the training
app's public ``rlcore.train.train``) through the sandbox's :func:`~rewards.llm.sandbox.process.run_child`:
a temporary working directory, an environment without API keys, rlimits on the worker's address
space, CPU time and file sizes (a :class:`~rewards.llm.sandbox.process.ChildLimits`; the address
space is not limited for a job on CUDA, see :func:`limits_for_device`), and a wall-clock limit
after which the worker's process group is killed. How a worker ended becomes one plain message
(:func:`describe_exit`: "memory limit exceeded", "CPU time limit exceeded", ...).
:func:`training_stats` reads ``progress.csv`` and ``summary.json`` of the finished run.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Any, Optional

from omegaconf import OmegaConf

from rewards.llm.sandbox.process import CPU_GRACE_S, ChildLimits, ChildResult, child_environment, run_child
from rewards.llm.search.records import TrainingStats, read_json

#: the folder holding the ``rewards`` package: the worker imports the same code as the search
ROOT = Path(__file__).resolve().parents[3]
log = logging.getLogger(__name__)


@dataclass
class TrainingJob:
    """Outcome of one training run in a worker.

    Attributes:
        ok: the run finished.
        error: why it did not (the worker's traceback, a timeout, a signal), else ``None``.
        run_dir: the training run's folder.
        wall_s: wall-clock seconds of the worker (s).
        stats: its curves (set by the caller once the run finished).
        fitness: its fitness (set by the caller once the run finished).
    """

    ok: bool
    error: Optional[str]
    run_dir: str
    wall_s: float
    stats: Optional[TrainingStats] = None
    fitness: Optional[float] = None


def read_progress(progress_csv: Path) -> list[dict[str, str]]:
    """Rows of a training run's ``progress.csv`` (empty if there is none)."""
    if not progress_csv.exists():
        return []
    with open(progress_csv, newline="") as f:
        return list(csv.DictReader(f))


def training_stats(run_dir: Path, metric: str) -> TrainingStats:
    """Curves of a finished training run: eval metric, success, episode length, reward components.

    ``metric`` is ``"success"`` (eval success rate) or ``"return"`` (eval return of the env's reward).
    The final evaluation of ``summary.json`` is the last point of the eval curves.
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
    components: dict[str, list] = {}
    prefix = "reward/component/"
    names = sorted({c[len(prefix):].rsplit("/", 1)[0] for c in (rows[0].keys() if rows else []) if c.startswith(prefix)})
    for name in names:
        pts = []
        for r in rows:
            cols = [r.get(f"{prefix}{name}/{s}", "") for s in ("mean", "min", "max")]
            if all(c not in ("", None) for c in cols):
                pts.append((int(float(r["time/timesteps"])), *(float(c) for c in cols)))
        components[name] = pts
    return TrainingStats(success=success, metric=values, episode_length=lengths, components=components)


def _uses_cuda(device: Any) -> bool:
    name = str(device if device is not None else "cpu")
    if name == "auto":
        import torch

        return bool(torch.cuda.is_available())
    return name.startswith("cuda")


def limits_for_device(limits: ChildLimits | None, device: Any) -> ChildLimits | None:
    """``limits`` for a job on ``device`` (the training config's ``device``): on CUDA (``cuda``,
    ``cuda:N``, or ``auto`` where CUDA is available) without the address-space limit, with a
    logged note. CUDA reserves far more address space than it uses (unified addressing), so an
    ``RLIMIT_AS`` low enough to bound host memory is unworkable there; ``RLIMIT_DATA`` might work but
    is not verified on a GPU here, so nothing bounds the host memory of a CUDA worker (the CPU-time,
    file-size, per-call and wall-clock limits stay)."""
    if limits is None or limits.memory_mb is None or not _uses_cuda(device):
        return limits
    log.warning("the training worker runs on %s: its memory is not limited (an address-space limit "
                "breaks CUDA); CPU-time, file-size and wall-clock limits still apply", device)
    return dataclasses.replace(limits, memory_mb=None)


def describe_exit(child: ChildResult, limits: ChildLimits | None, error_text: str) -> str:
    """The candidate's error for a worker that failed: ``error_text`` (the worker's ``error.txt``,
    else the end of its output) after one plain line for a worker that a signal ended."""
    code = child.returncode
    if code >= 0:
        return error_text.strip() or f"training exited with status {code}"
    sig = -code
    cpu = f"{limits.cpu_s} s" if limits is not None and limits.cpu_s is not None else None
    if sig == signal.SIGXCPU:
        head = (f"CPU time limit exceeded: the training worker used more than {cpu or 'its'} of CPU time "
                "(search.worker_cpu_s; an endless or very long loop in the reward code?)")
    elif sig == signal.SIGXFSZ:
        size = f"{limits.file_mb} MiB" if limits is not None and limits.file_mb is not None else "its limit"
        head = f"file size limit exceeded: the training worker wrote a file larger than {size} (search.worker_file_mb)"
    elif sig == signal.SIGKILL:
        hard = f" ({limits.cpu_s + CPU_GRACE_S} s)" if cpu is not None else ""
        head = (f"the training worker was killed (SIGKILL): its CPU time limit{hard} or the system's out-of-memory "
                f"killer ({limits.describe() if limits is not None else 'no limits set'})")
    else:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        head = f"the training worker crashed with {name}"
    return f"{head}\n{error_text.strip()}".strip()


def run_training_job(train_cfg: dict[str, Any], job_dir: Path, timeout_s: float, isolation: str = "auto",
                     readable: Sequence[str | os.PathLike[str]] = (),
                     limits: ChildLimits | None = None) -> TrainingJob:
    """Train one config in a worker process under ``job_dir`` (``job.yaml``, ``worker.log``, ``train/``).

    The worker runs the model-written reward: it runs in a fresh temporary working directory with an
    allowlisted environment (no API keys), isolated as ``isolation`` says (no network; writes only to
    its working directory and ``job_dir``; ``readable`` adds paths it reads, such as the reward's
    code; see :mod:`rewards.llm.sandbox.process`), under ``limits`` (rlimits of the worker process;
    without the address-space limit on CUDA, :func:`limits_for_device`), and its process group is
    killed after ``timeout_s`` seconds of wall-clock time. A failed run's ``error`` says which limit
    ended it ("memory limit exceeded", "CPU time limit exceeded", "file size limit exceeded", the
    reward call's "exceeded N s", "timed out") above the worker's traceback.
    """
    job_dir = Path(job_dir).resolve()  # the worker runs in a temporary directory: absolute paths only
    job_dir.mkdir(parents=True, exist_ok=True)
    run_dir = job_dir / "train"
    job_path = job_dir / "job.yaml"
    (job_dir / "error.txt").unlink(missing_ok=True)
    OmegaConf.save(OmegaConf.create({**train_cfg, "worker_run_dir": str(run_dir)}), job_path)
    env = child_environment()
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    limits = limits_for_device(limits, train_cfg.get("device", "cpu"))
    with tempfile.TemporaryDirectory(prefix="rlreward-candidate-") as cwd:
        env["MPLCONFIGDIR"] = os.path.join(cwd, ".matplotlib")  # HOME is read-only under isolation
        child = run_child([sys.executable, "-m", "rewards.llm.search.worker", str(job_path)], cwd=cwd, env=env,
                          timeout_s=timeout_s, merge_stderr=True, isolation=isolation, writable=[job_dir],
                          readable=readable, limits=limits)
    if child.timed_out:
        return TrainingJob(ok=False, error=f"training timed out after {timeout_s:g} s of wall-clock time (killed)",
                           run_dir=str(run_dir), wall_s=child.wall_s)
    (job_dir / "worker.log").write_text(child.stdout)
    if child.returncode != 0:
        err_file = job_dir / "error.txt"
        error = err_file.read_text() if err_file.exists() else child.stdout[-4000:]
        return TrainingJob(ok=False, error=describe_exit(child, limits, error), run_dir=str(run_dir),
                           wall_s=child.wall_s)
    return TrainingJob(ok=True, error=None, run_dir=str(run_dir), wall_s=child.wall_s)
