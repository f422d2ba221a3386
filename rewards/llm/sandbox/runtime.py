"""What runs in-process: the restricted builtins, loading checked code, output checks and :class:`RewardFunction`.

Reward code that passed :func:`~.policy.check_code` is compiled under :data:`~.policy.REWARD_FILENAME`
and executed with :data:`SAFE_BUILTINS` as ``__builtins__``; :class:`RewardFunction` calls its
``compute_reward`` and checks every output (:func:`check_reward_outputs`: shapes, dtypes, device,
finiteness). In-process, the only limit is an optional per-call deadline (``call_timeout_s``: a
``SIGALRM`` timer around each call, main thread only); memory and CPU time are limited by the
process the code runs in: the validation child (:mod:`.child`) or the reward search's training
worker (:class:`~.process.ChildLimits`).
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import math
import re
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import torch

from .policy import (ALLOWED_MODULES, DEFAULT_MAX_CHARS, DEFAULT_MAX_COMPONENTS, ENTRY_POINT,
                     MAX_COMPONENT_NAME_CHARS, REWARD_FILENAME, RewardCodeError, check_code)


def _guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``__import__`` for reward code: only :data:`ALLOWED_MODULES` (``import torch`` stays a no-op).

    torch's own C++ code also imports through the ``__import__`` of the calling frame (e.g.
    ``torch.tensor([...])`` looks up ``torch.storage``), so torch modules that are *already loaded*
    are handed back as well: that runs no module code and reaches nothing the process has not loaded.
    """
    if level == 0 and (name == "torch" or name.startswith("torch.")) and name in sys.modules:
        return sys.modules[name] if fromlist else sys.modules["torch"]
    if level != 0 or name not in ALLOWED_MODULES:
        raise ImportError(f"import of '{name}' is not allowed in reward code")
    return importlib.import_module(name if fromlist else name.split(".")[0])


def _quiet_print(*args: Any, **kwargs: Any) -> None:
    """``print`` in reward code does nothing (it would flood the training logs)."""


_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "bool", "dict", "divmod", "enumerate", "filter", "float", "frozenset", "int",
    "isinstance", "iter", "len", "list", "map", "max", "min", "next", "pow", "range", "reversed", "round",
    "set", "slice", "sorted", "str", "sum", "tuple", "zip",
    "ArithmeticError", "AssertionError", "Exception", "IndexError", "KeyError", "NotImplementedError",
    "RuntimeError", "TypeError", "ValueError", "ZeroDivisionError",
)
#: The whole builtin namespace of reward code (copied per compiled function).
SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
SAFE_BUILTINS.update({"True": True, "False": False, "None": None, "print": _quiet_print,
                      "__import__": _guarded_import})


def _load_entry(code: str, max_chars: int = DEFAULT_MAX_CHARS) -> Callable[..., Any]:
    """Check ``code``, execute its top level with restricted builtins, return ``compute_reward``.

    What runs is the tree :func:`~.policy.check_code` checked (the code without its inert habits)."""
    tree = check_code(code, max_chars)
    try:
        code_obj = compile(tree, REWARD_FILENAME, "exec", dont_inherit=True)
    except Exception as exc:  # noqa: BLE001 - e.g. 'break' outside a loop, or a RecursionError of the compiler
        raise RewardCodeError(f"the reward code cannot be compiled: {type(exc).__name__}: {str(exc)[:300]}") from None
    namespace: dict[str, Any] = {"__builtins__": dict(SAFE_BUILTINS), "torch": torch, "math": math,
                                 "__name__": "reward_code"}
    try:
        exec(code_obj, namespace)  # noqa: S102 - policy-checked code, restricted builtins
    except Exception as exc:
        raise RewardCodeError("the top level of the reward code raised an exception:\n"
                              + format_user_exception(exc, code)) from exc
    fn = namespace.get(ENTRY_POINT)
    if not callable(fn):
        raise RewardCodeError(f"'{ENTRY_POINT}' is not a function after running the code")
    return fn


def format_user_exception(exc: BaseException, code: str, max_frames: int = 12, *, message: str | None = None) -> str:
    """Traceback of ``exc`` restricted to frames of the reward code; line numbers refer to ``code``.

    The last line is the exception (``ZeroDivisionError: division by zero``) unless ``message`` replaces it.
    """
    lines = code.splitlines()
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == REWARD_FILENAME]
    out = ["Traceback (most recent call last; line numbers refer to the reward code):"]
    shown: list[Any] = frames
    omitted = 0
    if len(frames) > max_frames:
        omitted = len(frames) - max_frames
        shown = frames[: max_frames // 2] + frames[-(max_frames - max_frames // 2):]
    for i, f in enumerate(shown):
        if omitted and i == max_frames // 2:
            out.append(f"  ... {omitted} more frames ...")
        out.append(f"  line {f.lineno}, in {f.name}")
        if f.lineno and 1 <= f.lineno <= len(lines):
            out.append("    " + lines[f.lineno - 1].strip())
    if message is None:
        message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    out.append(message[:2000])
    return "\n".join(out)



def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)} and dtype {value.dtype}"
    return f"a value of type {type(value).__name__}"


def tensor_stats(t: torch.Tensor) -> dict[str, float]:
    """``{"mean", "min", "max"}`` of ``t`` as floats (what validation reports and ``CodeReward`` logs per component)."""
    t = t.detach().float()
    return {"mean": float(t.mean()), "min": float(t.min()), "max": float(t.max())}


_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def sanitize_component_name(name: str, max_chars: int = MAX_COMPONENT_NAME_CHARS) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_.-]`` replaced by ``_``, cut to ``max_chars``
    (``"_"`` for an empty name): what a component is called in logs and in the model's prompt."""
    return _UNSAFE_NAME_CHARS.sub("_", str(name))[:max_chars] or "_"


def _sanitize_components(components: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Components under :func:`sanitize_component_name` names; clashes get ``_2``, ``_3``, ... suffixes."""
    if all(len(k) <= MAX_COMPONENT_NAME_CHARS and not _UNSAFE_NAME_CHARS.search(k) and k for k in components):
        return components
    out: dict[str, torch.Tensor] = {}
    for key, value in components.items():
        name = base = sanitize_component_name(key)
        i = 2
        while name in out or (name != key and name in components):
            suffix = f"_{i}"
            name = base[:MAX_COMPONENT_NAME_CHARS - len(suffix)] + suffix
            i += 1
        out[name] = value
    return out


def check_reward_outputs(result: Any, num_envs: int, device: torch.device, *, check_finite: bool = True,
                         max_components: int = DEFAULT_MAX_COMPONENTS
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Validate what ``compute_reward`` returned; return ``(reward float32[N], components)``.

    Shape, dtype and device checks read metadata only; ``check_finite`` adds one host sync for all
    tensors together and checks the values as float32 (a float64 ``1e300`` is ``inf`` there). More
    than ``max_components`` components are refused; component names come back sanitised
    (:func:`sanitize_component_name`). Raises :class:`RewardCodeError` naming the offending value.
    """
    n = num_envs
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise RewardCodeError(f"{ENTRY_POINT} must return a tuple (reward, components) with reward a float "
                              f"tensor of shape [{n}] and components a dict of str -> tensor [{n}]; "
                              f"it returned {_describe(result)}"
                              + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    reward, components = result
    if not isinstance(reward, torch.Tensor):
        raise RewardCodeError(f"reward (first return value) must be a torch.Tensor of shape [{n}]; got {_describe(reward)}")
    if not reward.dtype.is_floating_point:
        raise RewardCodeError(f"reward has dtype {reward.dtype}; it must be a floating tensor (e.g. use .float())")
    if tuple(reward.shape) != (n,):
        hint = " (a scalar)" if reward.dim() == 0 else ""
        raise RewardCodeError(f"reward has shape {list(reward.shape)}{hint}; expected [{n}], one value per env")
    if reward.device != device:
        raise RewardCodeError(f"reward is on device {reward.device}; expected {device} (the device of the inputs)")
    if not isinstance(components, dict):
        raise RewardCodeError(f"components (second return value) must be a dict of str -> tensor [{n}]; "
                              f"got {_describe(components)}")
    if len(components) > max_components:
        raise RewardCodeError(f"{ENTRY_POINT} returned {len(components)} components; at most {max_components} are "
                              "allowed (each one is logged and shown back to you): merge or drop some")
    components = _sanitize_components(components) if all(isinstance(k, str) for k in components) else components
    for key, value in components.items():
        if not isinstance(key, str):
            raise RewardCodeError(f"component key {sanitize_component_name(repr(key))!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise RewardCodeError(f"component '{key}' must be a torch.Tensor of shape [{n}]; got {_describe(value)}")
        if value.is_complex():
            raise RewardCodeError(f"component '{key}' has complex dtype {value.dtype}")
        if tuple(value.shape) != (n,):
            raise RewardCodeError(f"component '{key}' has shape {list(value.shape)}; expected [{n}]")
        if value.device != device:
            raise RewardCodeError(f"component '{key}' is on device {value.device}; expected {device}")
    reward32 = reward.float()
    if check_finite:
        # checked as float32, the dtype they are used and logged in (a float64 1e300 overflows to inf)
        tensors = [("reward", reward, reward32)] + [(f"component '{k}'", v, v.float()) for k, v in components.items()]
        flags = torch.stack([torch.isfinite(t).all() for _, _, t in tensors]).tolist()  # the one host sync
        for (label, orig, t), ok in zip(tensors, flags):
            if not ok:
                nan = int(torch.isnan(t).sum())
                inf = int(torch.isinf(t).sum())
                note = ""
                if orig.dtype != torch.float32 and bool(torch.isfinite(orig).all()):
                    note = (f" (finite as {orig.dtype}, but beyond the float32 range of about +-3.4e38: "
                            "keep the values small)")
                raise RewardCodeError(f"{label} has non-finite values: {nan} NaN and {inf} inf out of {n}{note}")
    return reward32, components


def copy_inputs(state: Mapping[str, Any], action: torch.Tensor, next_state: Mapping[str, Any]
                ) -> tuple[dict[str, Any], torch.Tensor, dict[str, Any]]:
    """``(state, action, next_state)`` with every tensor cloned: what reward code is called on, so that
    writes to its inputs stay in the copies (torch has no read-only tensors to hand out instead)."""
    def clone(v: Any) -> Any:
        return v.clone() if isinstance(v, torch.Tensor) else v
    return ({k: clone(v) for k, v in state.items()}, action.clone(), {k: clone(v) for k, v in next_state.items()})


class RewardCallTimeout(BaseException):
    """Raised inside reward code when its call passed the deadline (a BaseException, so that nothing
    on the way out swallows it; reward code cannot catch anything: ``try`` is refused)."""


@contextlib.contextmanager
def call_deadline(seconds: float | None) -> Iterator[None]:
    """Raise :class:`RewardCallTimeout` in the code running under this block once ``seconds`` of
    wall-clock time have passed (``SIGALRM`` from ``setitimer(ITIMER_REAL)``; the handler runs
    between two Python bytecodes, so one long native call, such as a single huge torch operation,
    ends first). A no-op for ``None``, off the main thread (signals reach only the main thread),
    without ``setitimer`` (Windows) and while another ``ITIMER_REAL`` timer is armed (it is not
    replaced). Costs two system calls and two handler swaps per call, no host sync."""
    if (seconds is None or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread()
            or signal.getitimer(signal.ITIMER_REAL)[0] > 0):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise RewardCallTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


class RewardFunction:
    """Compiled reward code, called in-process: ``(state, action, next_state) -> (reward, components)``.

    ``state``/``next_state``: dict[str, Tensor[N, ...]]; ``action``: Tensor[N, ...]. Returns
    ``reward`` float32[N] on ``action.device`` and ``components`` dict[str, Tensor[N]] (at most
    ``max_components``, sanitised names). Runs under ``torch.no_grad()`` on copies of every input
    tensor (:func:`copy_inputs`), so a write to an input (``action[:] = 6``) cannot reach the
    caller's tensors (e.g. the learner's rollout storage). Exceptions of the reward code and
    bad outputs become :class:`RewardCodeError` (with the user's line numbers). With
    ``call_timeout_s``, a call that runs longer (wall-clock, in the main thread; see
    :func:`call_deadline`) is stopped with a :class:`RewardCodeError` saying "the reward call
    exceeded N s" and the line that was running. Memory and CPU time are not limited in-process:
    that is the job of the process the code runs in (:func:`~.child.validate_in_subprocess`, the
    reward search's training worker).
    """

    def __init__(self, code: str, *, check_outputs: bool = True, validation: ValidationReport | None = None,
                 max_chars: int = DEFAULT_MAX_CHARS, max_components: int = DEFAULT_MAX_COMPONENTS,
                 call_timeout_s: float | None = None):
        if call_timeout_s is not None and (isinstance(call_timeout_s, bool) or not call_timeout_s > 0):
            raise ValueError(f"call_timeout_s must be None (no deadline) or a number of seconds > 0, got {call_timeout_s!r}")
        self.code = code
        self.check_outputs = check_outputs
        self.max_components = int(max_components)
        self.call_timeout_s = None if call_timeout_s is None else float(call_timeout_s)
        self.validation = validation
        self._fn = _load_entry(code, max_chars)
        self._component_names: tuple[str, ...] = tuple(validation.component_names) if validation else ()

    @property
    def component_names(self) -> tuple[str, ...]:
        """Names of the components (from validation, else from the first call; empty before)."""
        return self._component_names

    def __call__(self, state: Mapping[str, torch.Tensor], action: torch.Tensor,
                 next_state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        inputs = copy_inputs(state, action, next_state)
        try:
            with torch.no_grad(), call_deadline(self.call_timeout_s):
                result = self._fn(*inputs)
        except RewardCallTimeout as exc:
            raise RewardCodeError(
                f"time limit exceeded: the reward call exceeded {self.call_timeout_s:g} s of wall-clock time on a "
                f"batch of {action.shape[0]} rows (the per-call time limit; an endless loop, or code too slow "
                "for this batch size?)\n"
                + format_user_exception(exc, self.code, message="(stopped here by the per-call time limit)")) from None
        except RewardCodeError:
            raise
        except Exception as exc:
            raise RewardCodeError(f"{ENTRY_POINT} raised an exception:\n" + format_user_exception(exc, self.code)) from exc
        reward, components = check_reward_outputs(result, action.shape[0], action.device,
                                                  check_finite=self.check_outputs, max_components=self.max_components)
        if not self._component_names:
            self._component_names = tuple(components)
        return reward, components

    def __repr__(self) -> str:
        return f"RewardFunction(components={list(self._component_names)}, lines={len(self.code.splitlines())})"


@dataclass
class ValidationReport:
    """Outcome of :func:`~.child.validate_in_subprocess` (kept by the :class:`RewardFunction` it validated).

    ``error`` is the text for the language model (policy refusal, the user's traceback, a limit that
    was hit, or a bad output); the statistics are set only when ``ok``.
    """

    ok: bool
    error: str = ""
    reward_mean: float | None = None
    reward_min: float | None = None
    reward_max: float | None = None
    component_names: list[str] = field(default_factory=list)
    #: per component: {"mean", "min", "max"} over the sampled batch
    component_stats: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_time_s: float = 0.0

    def summary(self) -> str:
        """One human-readable paragraph (what goes back into the model's prompt)."""
        if not self.ok:
            return f"reward code failed validation:\n{self.error}"
        parts = [f"reward mean {self.reward_mean:.4g}, min {self.reward_min:.4g}, max {self.reward_max:.4g}"]
        for name, st in self.component_stats.items():
            parts.append(f"{name}: mean {st['mean']:.4g}, min {st['min']:.4g}, max {st['max']:.4g}")
        return "; ".join(parts)

