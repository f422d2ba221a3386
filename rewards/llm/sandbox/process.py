"""Child processes with a wall-clock limit: a scrubbed environment, a timeout, and a kill of the whole group.

Both children of the reward search go through :func:`run_child`: the sandbox's validation child
(:func:`~.child.validate_in_subprocess`) and the training worker of each candidate
(``rewards.llm.search.training``). The child starts in its own session (so its process group holds
everything it spawns); when ``timeout_s`` seconds of wall-clock time pass, the group gets ``SIGKILL``
and what the child wrote until then is still collected.

:func:`child_environment` is the environment both get: the parent's without secrets.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Substrings of environment-variable names that mark them as secrets (case-insensitive).
SECRET_NAME_MARKERS: tuple[str, ...] = (
    "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE", "SESSION",
)
_SECRET_VALUE = re.compile(r"^(sk-|ghp_|gho_|github_pat_|hf_|xox[abp]-|AKIA)")
_DROPPED_PYTHON_VARS = ("PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONBREAKPOINT", "PYTHONHOME")


def child_environment(parent_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ``parent_env`` (default ``os.environ``) without variables whose
    name contains a :data:`SECRET_NAME_MARKERS` marker or whose value looks like a known token
    format, with one-thread math libraries."""
    source = os.environ if parent_env is None else parent_env
    env = {k: v for k, v in source.items()
           if not any(m in k.upper() for m in SECRET_NAME_MARKERS)
           and not _SECRET_VALUE.match(v) and k not in _DROPPED_PYTHON_VARS}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


@dataclass(frozen=True)
class ChildResult:
    """How a child ended.

    Attributes:
        returncode: exit status; negative ``-signal`` when a signal ended it (``-SIGKILL`` after a timeout).
        stdout: what it wrote to stdout (decoded, undecodable bytes replaced); with ``merge_stderr`` also stderr.
        stderr: what it wrote to stderr ("" with ``merge_stderr``).
        timed_out: the wall-clock limit was hit and the process group was killed.
        wall_s: seconds from the start to the end of the child (s).
    """

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the child leads its own session: its group id is its pid
    except (ProcessLookupError, PermissionError):
        proc.kill()


def run_child(argv: Sequence[str], *, cwd: str | os.PathLike[str], env: Mapping[str, str], timeout_s: float,
              merge_stderr: bool = False) -> ChildResult:
    """Run ``argv`` in ``cwd`` with ``env`` and no stdin; kill its process group after ``timeout_s`` s."""
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate()
    return ChildResult(returncode=proc.returncode, stdout=(out or b"").decode("utf-8", "replace"),
                       stderr=(err or b"").decode("utf-8", "replace"), timed_out=timed_out,
                       wall_s=time.perf_counter() - start)
