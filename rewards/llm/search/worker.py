"""Train one reward candidate in its own process: ``python -m rewards.llm.search.worker <job.yaml>``.

The search (:mod:`rewards.llm.search.training`) writes a full training config (the training app's
``train`` config with ``reward`` pointing at the candidate's code) to ``job.yaml`` and starts this
module in a child process with a wall-clock timeout, a temporary working directory and an
environment scrubbed of API keys (:func:`scrubbed_environ`). The worker calls the training app's
public entry ``rlcore.train.train(cfg, run_dir)`` (config in, summary out) with the run directory
named in the job; any exception is written, with its full traceback, to ``error.txt`` next to the
job file, and the exit status is 1.

The search starts the worker under rlimits (:class:`~rewards.llm.sandbox.process.ChildLimits`);
the worker turns reaching one into the last line of ``error.txt``: the soft CPU-time limit's
``SIGXCPU`` raises :class:`CpuTimeExceeded` where the code is ("CPU time limit exceeded"; the hard
limit kills a few seconds later), a failed allocation becomes "memory limit exceeded" (16 MiB of
address space are held back so that the report can still be written), and a write past the
file-size limit fails with ``EFBIG`` ("file size limit exceeded"; ``SIGXFSZ`` is ignored, as
Python does by default, so it does not kill).
The per-call deadline of the reward code is the reward module's (``call_timeout_s``, set from
``search.reward_call_timeout_s`` in the job's ``reward.module``).
"""

from __future__ import annotations

import errno
import mmap
import resource
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Optional

from rewards.llm.sandbox.process import child_environment, is_memory_error

#: address space held back until a failure is reported (released first, so the report fits)
_RESERVE_BYTES = 16 * 2**20


class CpuTimeExceeded(BaseException):
    """Raised by the ``SIGXCPU`` handler (a BaseException, so that nothing on the way out swallows it)."""


def _on_sigxcpu(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGXCPU, signal.SIG_IGN)  # once: another one would interrupt the report
    raise CpuTimeExceeded()


def _limit_mib(which: int) -> Optional[int]:
    soft, _ = resource.getrlimit(which)
    return None if soft == resource.RLIM_INFINITY else soft // 2**20


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    cur: Optional[BaseException] = exc
    while cur is not None and cur not in out:
        out.append(cur)
        cur = cur.__cause__ or cur.__context__
    return out


def limit_message(exc: BaseException, cpu_limit_s: Optional[int]) -> Optional[str]:
    """One line naming the resource limit that ``exc`` comes from, or None when it is another failure.
    ``cpu_limit_s``: the soft CPU-time limit the worker started with (the kernel raises the soft
    limit by 1 s at each ``SIGXCPU``, so it is read at the start)."""
    if any(isinstance(e, CpuTimeExceeded) for e in _chain(exc)):
        return (f"CPU time limit exceeded: the training worker used its {cpu_limit_s} s of CPU time "
                "(search.worker_cpu_s; an endless or very long loop in the reward code?)")
    if any(isinstance(e, OSError) and e.errno == errno.EFBIG for e in _chain(exc)):
        return (f"file size limit exceeded: the training worker tried to write a file larger than "
                f"{_limit_mib(resource.RLIMIT_FSIZE)} MiB (search.worker_file_mb)")
    if is_memory_error(exc):
        mib = _limit_mib(resource.RLIMIT_AS)
        if mib is None:
            return "out of memory: an allocation failed in the training worker (it has no memory limit)"
        return (f"memory limit exceeded: an allocation failed in the training worker, which may use {mib} MiB of "
                "address space (search.worker_memory_mb; the reward code allocating too much on large batches?)")
    return None


def scrubbed_environ(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: this process's) without secrets: the same rules as the sandbox's
    validation child (:func:`rewards.llm.sandbox.process.child_environment`: secret-looking names such as
    ``*KEY*``/``*TOKEN*``, token-looking values such as ``sk-...``), one-thread math libraries."""
    return child_environment(environ)


def main(job_path: str) -> int:
    job = Path(job_path).resolve()
    cpu_soft, _ = resource.getrlimit(resource.RLIMIT_CPU)
    cpu_limit_s = None if cpu_soft == resource.RLIM_INFINITY else int(cpu_soft)
    reserve = mmap.mmap(-1, _RESERVE_BYTES)
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        from omegaconf import OmegaConf

        from rlcore.train import train

        cfg = OmegaConf.load(job)
        run_dir = Path(str(cfg.pop("worker_run_dir")))
        train(cfg, run_dir)
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure becomes the candidate's error text
        reserve.close()
        for e in _chain(exc):  # frees what the failing code held (a hoarded list) before the report is written
            traceback.clear_frames(e.__traceback__)
        text = traceback.format_exc()
        summary = limit_message(exc, cpu_limit_s)
        (job.parent / "error.txt").write_text(text + (f"\n{summary}\n" if summary else ""))
        return 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m rewards.llm.search.worker <job.yaml>")
    raise SystemExit(main(sys.argv[1]))
