"""Child processes that run model-written code: OS isolation, an allowlisted environment, a
wall-clock limit and a kill of the whole group.

Both children of the reward search go through :func:`run_child`: the sandbox's validation child
(:func:`~.child.validate_in_subprocess`) and the training worker of each candidate
(``rewards.llm.search.training``).

* **Isolation** (``isolation="auto"`` or ``"bwrap"``): the child runs under bubblewrap
  (``bwrap``, a maintained namespace sandbox) with every namespace unshared — no network (an empty
  network namespace), its own PID/IPC/UTS namespaces — the whole filesystem read-only, a private
  ``/tmp``, and write access only to its working directory and the paths the caller names. ``auto``
  uses bwrap when it is installed and works here, and otherwise runs the child without it after a
  loud warning (logged and issued as a ``RuntimeWarning``); ``bwrap`` refuses to run without it;
  ``off`` never isolates (trusted code, tests).
* **Environment**: :func:`child_environment` passes an allowlist of variables (:data:`ALLOWED_ENV`),
  never the parent's secrets, whatever their names.
* **Time**: the child starts in its own session; when ``timeout_s`` seconds of wall-clock time
  pass, its group gets ``SIGKILL`` (bwrap's ``--die-with-parent`` takes the sandboxed processes
  with it) and what the child wrote until then is still collected.
* **Parent death**: the child dies with the process that started it, so a killed search leaves no
  worker running past its time limit (or racing the resumed search in the same folder): bwrap's
  ``--die-with-parent``; without bwrap on Linux, a launcher that sets the parent-death signal
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, kept across ``exec``) and then execs the child.
* **Resources** (``limits``, a :class:`ChildLimits`): rlimits on address space, CPU time and file
  size, and no core files. They are set by a small exec wrapper (this file run as a script:
  ``python -I -S process.py <limits> -- <argv>``) that calls :func:`set_limit` and then execs the
  command, bwrap included, so the limits hold for bwrap and everything it starts (rlimits are
  inherited across ``fork`` and ``exec``, and an unprivileged process cannot raise a hard limit,
  inside a user namespace or not). Not ``preexec_fn``: Python documents it as unsafe in a process
  with threads, and the reward search starts its workers from a thread pool. The wrapper costs one
  interpreter start without ``site`` (tens of ms). Process counts (``RLIMIT_NPROC``) are not
  limited: that rlimit counts every process of the user on the machine, not the child's.

:func:`set_limit` (lower a limit, never above the current hard limit) and :func:`is_memory_error`
are shared with the validation child (:mod:`.child`). This module imports only the standard library.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: The only parent environment variables a child sees: what Python, torch and the simulators need.
ALLOWED_ENV: tuple[str, ...] = (
    "PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
    "CUDA_VISIBLE_DEVICES", "CUDA_HOME", "LD_LIBRARY_PATH", "MUJOCO_GL", "PYOPENGL_PLATFORM", "SDL_VIDEODRIVER",
)
#: Substrings of environment-variable names that mark them as secrets (case-insensitive); checked
#: on top of the allowlist, for names a caller adds.
SECRET_NAME_MARKERS: tuple[str, ...] = (
    "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE", "SESSION",
)
_SECRET_VALUE = re.compile(r"^(sk-|ghp_|gho_|github_pat_|hf_|xox[abp]-|AKIA)")
#: ``isolation`` values of :func:`run_child`.
ISOLATION_MODES = ("auto", "bwrap", "off")


def child_environment(parent_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: the :data:`ALLOWED_ENV` variables of ``parent_env`` (default
    ``os.environ``) whose values do not look like a known token format, with one-thread math libraries."""
    source = os.environ if parent_env is None else parent_env
    env = {k: v for k, v in source.items()
           if k in ALLOWED_ENV and not any(m in k.upper() for m in SECRET_NAME_MARKERS) and not _SECRET_VALUE.match(v)}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


@functools.lru_cache(maxsize=1)
def bwrap_available() -> str | None:
    """Why bubblewrap cannot isolate children here, or None when it can (probed once per process)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap (bwrap) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    try:
        probe = subprocess.run([exe, *_bwrap_args([]), "--", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start: {exc}"
    if probe.returncode != 0:
        return f"the kernel refused bwrap's namespaces: {probe.stderr.decode('utf-8', 'replace').strip()[:300]}"
    return None


def _bwrap_args(writable: Sequence[str], readable: Sequence[str] = ()) -> list[str]:
    """Everything read-only, a private empty ``/tmp``; then ``readable`` paths bound back read-only
    (what lies under ``/tmp`` would be hidden otherwise: the interpreter, the code, the run dir) and
    ``writable`` paths bound read-write."""
    args = ["--die-with-parent", "--unshare-all", "--new-session", "--ro-bind", "/", "/", "--dev-bind", "/dev", "/dev",
            "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in readable:
        args += ["--ro-bind", path, path]
    for path in writable:
        args += ["--bind", path, path]
    return args


def _python_paths() -> list[str]:
    """Directories the child's interpreter needs to read: its prefixes and every ``sys.path`` entry."""
    dirs = {sys.prefix, sys.base_prefix, *(p for p in sys.path if p)}
    return sorted(d for d in (os.path.abspath(x) for x in dirs) if os.path.isdir(d))


def isolation_prefix(isolation: str, writable: Sequence[str | os.PathLike[str]],
                     cwd: str | os.PathLike[str] | None = None,
                     readable: Sequence[str | os.PathLike[str]] = ()) -> list[str]:
    """The argv prefix that runs a command isolated (``[]`` when not isolating); see the module docstring."""
    if isolation not in ISOLATION_MODES:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATION_MODES)}, got {isolation!r}")
    if isolation == "off":
        return []
    problem = bwrap_available()
    if problem is not None:
        if isolation == "bwrap":
            raise RuntimeError(f"isolation=bwrap: {problem}")
        message = (f"model-written reward code runs WITHOUT OS isolation (network and filesystem reachable): "
                   f"{problem}")
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return []
    chdir = ["--chdir", os.path.abspath(cwd)] if cwd is not None else []
    readable_dirs = [*_python_paths(), *(os.path.abspath(p) for p in readable)]
    args = _bwrap_args([os.path.abspath(p) for p in writable], readable_dirs)
    return [str(shutil.which("bwrap")), *args, *chdir, "--"]


def set_limit(which: int, soft: int, hard: int) -> None:
    """Set rlimit ``which`` to ``(soft, hard)``, never above the current hard limit (which an
    unprivileged process cannot raise)."""
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def is_memory_error(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception in its ``__cause__``/``__context__`` chain is a failed
    allocation: ``MemoryError``, torch's ``OutOfMemoryError`` or its "can't allocate memory"."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, MemoryError) or type(cur).__name__ == "OutOfMemoryError":
            return True
        text = str(cur).lower()
        if "can't allocate memory" in text or "out of memory" in text or "cannot allocate memory" in text:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


#: Seconds of CPU time between the soft ``RLIMIT_CPU`` (``SIGXCPU``, which a child may turn into an
#: error message) and the hard one (``SIGKILL``).
CPU_GRACE_S = 5


@dataclass(frozen=True)
class ChildLimits:
    """Resource limits of a child started by :func:`run_child` (rlimits; ``None``: no limit).

    Attributes:
        memory_mb: address space of each process of the child (``RLIMIT_AS``, MiB), counted from
            its start: the interpreter, torch and its libraries (about 0.7-0.9 GiB of address space
            for a one-thread training worker), thread stacks (8 MiB each) and malloc arenas
            (up to 64 MiB per thread) included. A failed allocation raises ``MemoryError`` or
            torch's "can't allocate memory" in the child. Unusable with CUDA, which maps far more
            address space than the memory it uses: leave it ``None`` there.
        cpu_s: CPU seconds of each process (``RLIMIT_CPU``), counted from its start: ``SIGXCPU``
            at ``cpu_s``, ``SIGKILL`` :data:`CPU_GRACE_S` seconds later.
        file_mb: largest file each process may write (``RLIMIT_FSIZE``, MiB): a write beyond it
            raises ``SIGXFSZ``, or fails with ``EFBIG`` where the child ignores that signal (Python does).

    Core files are always off (``RLIMIT_CORE = 0``). The limits are per process and inherited by
    the child's own children (each with its own count).

    Raises:
        ValueError: a limit that is not ``None`` or an integer >= 1.
    """

    memory_mb: int | None = None
    cpu_s: int | None = None
    file_mb: int | None = None

    def __post_init__(self) -> None:
        for name in ("memory_mb", "cpu_s", "file_mb"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"ChildLimits.{name} must be None (no limit) or an integer >= 1, got {value!r}")

    def rlimits(self) -> list[tuple[int, int, int]]:
        """``(resource, soft, hard)`` for each limit, core files (off) first."""
        out = [(resource.RLIMIT_CORE, 0, 0)]
        if self.memory_mb is not None:
            out.append((resource.RLIMIT_AS, self.memory_mb * 2**20, self.memory_mb * 2**20))
        if self.cpu_s is not None:
            out.append((resource.RLIMIT_CPU, self.cpu_s, self.cpu_s + CPU_GRACE_S))
        if self.file_mb is not None:
            out.append((resource.RLIMIT_FSIZE, self.file_mb * 2**20, self.file_mb * 2**20))
        return out

    def describe(self) -> str:
        """The limits in words, for error messages."""
        parts = [f"{self.memory_mb} MiB address space" if self.memory_mb is not None else "no memory limit",
                 f"{self.cpu_s} s CPU" if self.cpu_s is not None else "no CPU-time limit",
                 f"{self.file_mb} MiB per file" if self.file_mb is not None else "no file-size limit"]
        return ", ".join(parts)


def limits_prefix(limits: ChildLimits | None) -> list[str]:
    """The argv prefix that runs a command under ``limits`` (``[]`` for ``None``): this file as a
    script, which sets the rlimits and execs the rest of the command line."""
    if limits is None:
        return []
    spec = ",".join(f"{which}:{soft}:{hard}" for which, soft, hard in limits.rlimits())
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), spec, "--"]


def _exec_with_limits(args: Sequence[str]) -> int:
    """``<which:soft:hard,...> -- <argv>``: set the rlimits, then replace this process with ``argv``."""
    if len(args) < 3 or args[1] != "--":
        print("usage: python process.py <resource:soft:hard,...> -- <command> [args...]", file=sys.stderr)
        return 2
    for item in args[0].split(","):
        which, soft, hard = (int(x) for x in item.split(":"))
        set_limit(which, soft, hard)
    command = list(args[2:])
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127
    return 127  # pragma: no cover - execvp does not return


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


#: ``python -I -S -c`` launcher of a child run without bwrap (Linux): ``argv[1]`` is the parent's pid,
#: the rest the child's argv. SIGKILL when the parent dies, exit at once if it already has, then exec.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(128 + int(signal.SIGKILL))\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def _die_with_parent_prefix() -> list[str]:
    """The argv prefix that makes an unisolated child die with this process (``[]`` off Linux)."""
    if not sys.platform.startswith("linux") or not sys.executable:
        return []
    return [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid())]


def run_child(argv: Sequence[str], *, cwd: str | os.PathLike[str], env: Mapping[str, str], timeout_s: float,
              merge_stderr: bool = False, isolation: str = "auto",
              writable: Sequence[str | os.PathLike[str]] = (),
              readable: Sequence[str | os.PathLike[str]] = (),
              limits: ChildLimits | None = None) -> ChildResult:
    """Run ``argv`` in ``cwd`` with ``env`` and no stdin, isolated as ``isolation`` says (writes
    allowed in ``cwd`` and ``writable`` only; ``readable`` paths under ``/tmp`` stay visible), under
    the rlimits of ``limits`` (see :class:`ChildLimits`; ``None``: none set here); kill its process
    group after ``timeout_s`` s; it dies with this process (module docstring)."""
    start = time.perf_counter()
    prefix = isolation_prefix(isolation, [cwd, *writable], cwd=cwd, readable=readable) or _die_with_parent_prefix()
    proc = subprocess.Popen([*limits_prefix(limits), *prefix, *argv], cwd=cwd, env=dict(env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
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


if __name__ == "__main__":  # the exec wrapper of limits_prefix
    raise SystemExit(_exec_with_limits(sys.argv[1:]))
