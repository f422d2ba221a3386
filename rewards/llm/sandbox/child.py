"""The validation child: reward code run once in a fresh, limited Python process on sampled states.

:func:`validate_in_subprocess` (parent side) writes the code and the sample into a temporary
directory and starts a child through :func:`~.process.run_child` (scrubbed environment, wall-clock
limit, process-group kill). The child (:func:`child_main`) sets CPU-time and address-space limits
(:func:`_apply_limits`), runs ``compute_reward``, checks its outputs and that the inputs were not
modified, and writes ``result.json``; the parent turns it (or how the child died) into a
:class:`~.runtime.ValidationReport`.

The child loads this sandbox package by path (:data:`_BOOTSTRAP`), not as part of ``rewards``, so
the package imports only the standard library, torch and its own modules (relative imports).
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from .policy import DEFAULT_MAX_CHARS, DEFAULT_MAX_COMPONENTS, ENTRY_POINT, RewardCodeError, check_code
from .process import child_environment, is_memory_error, run_child, set_limit
from .runtime import (ValidationReport, _load_entry, check_reward_outputs, copy_inputs, format_user_exception,
                      tensor_stats)

#: ``python -c`` program of the child: ``argv[1]`` is this package's ``__init__.py``, ``argv[2]`` the work dir.
#: The package is loaded under its own name with the current directory off ``sys.path``.
_BOOTSTRAP = (
    "import sys, os, importlib, importlib.util\n"
    "sys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"
    "spec = importlib.util.spec_from_file_location('rlreward_sandbox_child', sys.argv[1],\n"
    "    submodule_search_locations=[os.path.dirname(sys.argv[1])])\n"
    "mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod\n"
    "spec.loader.exec_module(mod)\n"
    "sys.exit(importlib.import_module(spec.name + '.child').child_main(sys.argv[2]))\n"
)
_PACKAGE_INIT = str(Path(__file__).resolve().with_name("__init__.py"))
def _check_sample(sample: Mapping[str, Any]) -> None:
    for key in ("state", "action", "next_state"):
        if key not in sample:
            raise ValueError(f"sample is missing '{key}' (expected keys state, action, next_state)")
    if not isinstance(sample["action"], torch.Tensor) or sample["action"].dim() == 0:
        raise ValueError("sample['action'] must be a tensor with leading dimension N")
    for key in ("state", "next_state"):
        if not isinstance(sample[key], Mapping):
            raise ValueError(f"sample['{key}'] must be a dict of tensors, got {type(sample[key]).__name__}")
        for name, value in sample[key].items():
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"sample['{key}']['{name}'] must be a tensor, got {type(value).__name__}")


def _finish(report: ValidationReport, raise_on_error: bool) -> ValidationReport:
    if raise_on_error and not report.ok:
        raise RewardCodeError(report.error)
    return report


def _cpu_limit_message(cpu_seconds: int) -> str:
    return (f"CPU time limit exceeded: the reward code used more than {cpu_seconds} s of CPU time "
            "(an endless or very long loop?)")


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def validate_in_subprocess(code: str, sample: Mapping[str, Any], timeout_s: float = 20.0, cpu_seconds: int = 10,
                           memory_mb: int = 2048, *, raise_on_error: bool = False,
                           max_chars: int = DEFAULT_MAX_CHARS,
                           max_components: int = DEFAULT_MAX_COMPONENTS,
                           isolation: str = "auto") -> ValidationReport:
    """Run ``compute_reward`` once on ``sample`` in a fresh, limited Python process.

    ``sample = {"state": dict[str, Tensor[N, ...]], "action": Tensor[N, ...], "next_state": ...}``
    (see :func:`sample_states`) travels through a temporary file (``torch.save``, loaded with
    ``weights_only=True``). The child runs in that temporary directory with
    :func:`child_environment`, one torch thread, ``cpu_seconds`` of CPU time and ``memory_mb`` MiB
    of address space on top of what the interpreter with torch loaded already uses (for CUDA
    inputs, the same as a fraction of device memory); ``timeout_s`` bounds the wall-clock time,
    interpreter start included. The child calls the code on copies of the inputs
    (:func:`~.runtime.copy_inputs`, as :class:`~.runtime.RewardFunction` does), checks the outputs
    (:func:`check_reward_outputs`, at most ``max_components`` components) and refuses code that
    wrote to its inputs.

    Failures of the reward code (refusal, exception, limit, bad output, crash) come back as
    ``report.ok == False`` with ``report.error``; with ``raise_on_error`` they raise
    :class:`RewardCodeError`. A malformed ``sample`` raises ``ValueError``.
    """
    start = time.perf_counter()
    try:
        check_code(code, max_chars)
    except RewardCodeError as exc:
        return _finish(ValidationReport(ok=False, error=exc.reason), raise_on_error)
    _check_sample(sample)
    with tempfile.TemporaryDirectory(prefix="rlreward-sandbox-") as workdir:
        torch.save({"state": dict(sample["state"]), "action": sample["action"],
                    "next_state": dict(sample["next_state"])}, os.path.join(workdir, "sample.pt"))
        with open(os.path.join(workdir, "request.json"), "w") as f:
            json.dump({"code": code, "cpu_seconds": int(cpu_seconds), "memory_mb": int(memory_mb),
                       "max_chars": max_chars, "max_components": int(max_components)}, f)
        child = run_child([sys.executable, "-c", _BOOTSTRAP, _PACKAGE_INIT, workdir], cwd=workdir,
                          env=child_environment(), timeout_s=timeout_s, isolation=isolation)
        result_path = os.path.join(workdir, "result.json")
        result: dict[str, Any] | None = None
        if os.path.exists(result_path):
            try:
                with open(result_path) as f:
                    result = json.load(f)
            except (OSError, ValueError):
                result = None
    wall = time.perf_counter() - start
    if result is not None:
        report = ValidationReport(ok=bool(result.get("ok")), error=str(result.get("error", "")),
                                  reward_mean=result.get("reward_mean"), reward_min=result.get("reward_min"),
                                  reward_max=result.get("reward_max"),
                                  component_names=list(result.get("component_names", [])),
                                  component_stats=dict(result.get("component_stats", {})), wall_time_s=wall)
        return _finish(report, raise_on_error)
    tail = child.stderr[-1500:].strip()
    returncode = child.returncode
    if child.timed_out:
        error = (f"wall-clock time limit exceeded: validation did not finish within {timeout_s:g} s "
                 "(an endless loop, or very slow code?)")
    elif returncode < 0 and -returncode == signal.SIGXCPU:
        error = _cpu_limit_message(cpu_seconds)
    elif returncode < 0 and -returncode == signal.SIGKILL:
        error = ("the validation process was killed (SIGKILL): the CPU-time hard limit or the system's "
                 f"out-of-memory killer (limits: {cpu_seconds} s CPU, {memory_mb} MiB memory)")
    elif returncode < 0:
        error = f"the validation process crashed with {_signal_name(-returncode)}"
    else:
        error = f"the validation process exited with code {returncode} without a result"
    if tail and not child.timed_out:
        error += f"\nlast lines of its error output:\n{tail}"
    return _finish(ValidationReport(ok=False, error=error, wall_time_s=wall), raise_on_error)



class _CpuTimeExceeded(BaseException):
    """Raised in the child by the SIGXCPU handler (a BaseException, so nothing swallows it)."""


def _on_sigxcpu(signum: int, frame: Any) -> None:
    raise _CpuTimeExceeded()


def _vm_bytes() -> int:
    """Current virtual memory size of this process (``VmSize``), 0 if unknown."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _apply_limits(cpu_seconds: int, memory_mb: int, device: torch.device) -> None:
    """CPU time (beyond what setup used), address space (beyond the current size), no core files,
    small files only (the result file), and a SIGXCPU handler that turns the limit into an error
    (:func:`~.process.set_limit`; set here rather than through :class:`~.process.ChildLimits`
    because they count from the end of the set-up, torch import and sample loading excluded)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_soft = int(math.ceil(usage.ru_utime + usage.ru_stime)) + max(1, int(cpu_seconds))
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    set_limit(resource.RLIMIT_CPU, cpu_soft, cpu_soft + 2)
    set_limit(resource.RLIMIT_CORE, 0, 0)
    set_limit(resource.RLIMIT_FSIZE, 1 << 20, 1 << 20)
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, memory_mb * 2**20 / total), device)
    vm = _vm_bytes()
    if vm:
        limit = vm + int(memory_mb) * 2**20
        set_limit(resource.RLIMIT_AS, limit, limit)


def _run_child(request: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
    code = request["code"]
    check_code(code, int(request.get("max_chars", DEFAULT_MAX_CHARS)))  # the child checks again
    action: torch.Tensor = sample["action"]
    state, next_state = dict(sample["state"]), dict(sample["next_state"])
    passed_state, passed_action, passed_next = copy_inputs(state, action, next_state)  # what the code gets
    inputs = {f"state['{k}']": v for k, v in passed_state.items()}
    inputs.update({f"next_state['{k}']": v for k, v in passed_next.items()})
    inputs["action"] = passed_action
    originals = {f"state['{k}']": v for k, v in state.items()}
    originals.update({f"next_state['{k}']": v for k, v in next_state.items()})
    originals["action"] = action
    _apply_limits(int(request["cpu_seconds"]), int(request["memory_mb"]), action.device)
    fn = _load_entry(code, int(request.get("max_chars", DEFAULT_MAX_CHARS)))
    try:
        with torch.no_grad():
            result = fn(passed_state, passed_action, passed_next)
    except (_CpuTimeExceeded, RewardCodeError):
        raise
    except BaseException as exc:  # noqa: BLE001 - everything the user code raises is reported
        if is_memory_error(exc):
            raise RewardCodeError(f"memory limit exceeded: the reward code tried to allocate more memory than "
                                  f"the sandbox allows ({request['memory_mb']} MiB)\n"
                                  + format_user_exception(exc, code)) from exc
        raise RewardCodeError(f"{ENTRY_POINT} raised an exception:\n" + format_user_exception(exc, code)) from exc
    reward, components = check_reward_outputs(result, action.shape[0], action.device, check_finite=True,
                                              max_components=int(request.get("max_components", DEFAULT_MAX_COMPONENTS)))
    for label, before in originals.items():
        if not torch.equal(before, inputs[label]):
            raise RewardCodeError(f"{ENTRY_POINT} modified its input {label} in place; reward code must not "
                                  "change its inputs (work on copies, e.g. x = x.clone())")
    return {"ok": True, "error": "", "component_names": list(components),
            **{f"reward_{k}": v for k, v in tensor_stats(reward).items()},
            "component_stats": {k: tensor_stats(v) for k, v in components.items()}}


def child_main(workdir: str) -> int:
    """Entry point of the validation child (see :data:`_BOOTSTRAP`): writes ``result.json``."""
    result_path = os.path.join(workdir, "result.json")
    torch.set_num_threads(1)
    with open(os.path.join(workdir, "request.json")) as f:
        request = json.load(f)
    sample = torch.load(os.path.join(workdir, "sample.pt"), weights_only=True)
    try:
        payload = _run_child(request, sample)
    except _CpuTimeExceeded as exc:
        payload = {"ok": False, "error": (
            _cpu_limit_message(request["cpu_seconds"]) + "\n"
            + format_user_exception(exc, request["code"], message="(stopped here by the CPU-time limit)"))}
    except RewardCodeError as exc:
        payload = {"ok": False, "error": exc.reason}
    except MemoryError:
        payload = {"ok": False, "error": f"memory limit exceeded ({request['memory_mb']} MiB) while running the reward code"}
    with open(result_path, "w") as f:
        json.dump(payload, f)
    return 0

