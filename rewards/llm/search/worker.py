"""Train one reward candidate in its own process: ``python -m rewards.llm.search.worker <job.yaml>``.

The search (:mod:`rewards.llm.search.training`) writes a full training config (the training app's
``train`` config with ``reward`` pointing at the candidate's code) to ``job.yaml`` and starts this
module in a child process with a wall-clock timeout, a temporary working directory and an
environment scrubbed of API keys (:func:`scrubbed_environ`). The worker calls the training app's
public entry ``rlcore.train.train(cfg, run_dir)`` (config in, summary out) with the run directory
named in the job; any exception is written, with its full traceback, to ``error.txt`` next to the
job file, and the exit status is 1.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from rewards.llm.sandbox.process import child_environment


def scrubbed_environ(environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: this process's) without secrets: the same rules as the sandbox's
    validation child (:func:`rewards.llm.sandbox.process.child_environment`: secret-looking names such as
    ``*KEY*``/``*TOKEN*``, token-looking values such as ``sk-...``), one-thread math libraries."""
    return child_environment(environ)


def main(job_path: str) -> int:
    job = Path(job_path).resolve()
    try:
        from omegaconf import OmegaConf

        from rlcore.train import train

        cfg = OmegaConf.load(job)
        run_dir = Path(str(cfg.pop("worker_run_dir")))
        train(cfg, run_dir)
        return 0
    except BaseException:  # noqa: BLE001 - every failure becomes the candidate's error text
        (job.parent / "error.txt").write_text(traceback.format_exc())
        return 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m rewards.llm.search.worker <job.yaml>")
    raise SystemExit(main(sys.argv[1]))
