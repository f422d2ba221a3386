"""Sandbox for reward code written by a language model.

The code a model writes must define one function::

    def compute_reward(state, action, next_state):
        # state, next_state: dict[str, Tensor[N, ...]] (``env.get_state()``), action: Tensor[N, ...]
        return reward, components   # float32[N], dict[str, Tensor[N]]

Four layers stand between that code and the training process (see ``docs/llm_sandbox.md``):

1. :func:`check_code` — an AST policy: one ``compute_reward``, imports of torch/math only, no names
   like ``eval``/``open``/``getattr``, no attributes starting with ``_``, a denylist of dangerous
   attribute names on any object, module attributes resolved at check time (``torch.utils``,
   ``torch.hub``, ... refused), no ``class``/``try``/``with``/``global``/``yield``/decorators,
   no attribute assignment, no in-place tensor methods (``add_``).
2. Restricted builtins (:data:`SAFE_BUILTINS`) as ``__builtins__`` when the code runs.
3. :func:`validate_in_subprocess` — a fresh Python process with CPU-time and address-space limits,
   secret-looking environment variables removed and a temporary working directory, running the
   function on states sampled from the env (:func:`sample_states`).
4. Output checks (:func:`check_reward_outputs`) on every call of the compiled
   :class:`RewardFunction`: shapes, dtypes, device, finiteness.

Only the standard library and torch are imported here, because this file is also the entry point
of the validation child process (it is loaded by path there, not as part of the package).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rlcore.env import BatchedEnv

#: File name the reward code is compiled under; traceback frames with it are the user's frames.
REWARD_FILENAME = "<reward_code>"
ENTRY_POINT = "compute_reward"
ENTRY_ARGS = ("state", "action", "next_state")
DEFAULT_MAX_CHARS = 20_000

# ---------------------------------------------------------------------------------------- policy
#: Modules reward code may import or reach through attributes (``torch.nn`` only on the way to
#: ``torch.nn.functional``: its classes are refused by :data:`SAFE_TORCH_CLASSES`).
ALLOWED_MODULES: tuple[str, ...] = (
    "torch", "math", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.special", "torch.fft",
)

#: Builtin and global names that give access to code execution, files, introspection or the
#: interpreter; refused wherever they appear (read, assigned, or as parameter names).
FORBIDDEN_NAMES: frozenset[str] = frozenset({
    "exec", "eval", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals", "locals",
    "vars", "__import__", "input", "breakpoint", "help", "dir", "type", "object", "super", "memoryview",
    "exit", "quit", "classmethod", "staticmethod", "property", "bytearray", "callable",
    "__builtins__", "__loader__", "__spec__",
})

#: Attribute names refused on *any* object: module escapes, file and serialisation entry points,
#: raw memory, hooks, global setters, frame/code introspection and ``str.format`` (which performs
#: attribute lookups inside the format string, out of the AST's sight).
DENIED_ATTRIBUTES: frozenset[str] = frozenset({
    # modules reachable as attributes
    "os", "sys", "subprocess", "builtins", "importlib", "ctypes", "inspect", "gc", "pickle", "marshal",
    "shutil", "socket", "pathlib", "posix", "signal", "threading", "multiprocessing", "platform",
    "serialization", "glob", "warnings", "functools", "types", "textwrap", "io",
    # torch namespaces and entry points that touch files, processes, compilation or global state
    "save", "load", "hub", "utils", "ops", "library", "classes", "jit", "compile", "compiler",
    "distributed", "backends", "package", "fx", "export", "testing", "profiler", "overrides", "monitor",
    "cuda", "mps", "xpu", "mtia", "accelerator", "cpp", "storage", "untyped_storage", "UntypedStorage",
    "TypedStorage", "from_file", "frombuffer", "from_numpy", "from_dlpack", "to_dlpack", "manual_seed",
    "seed", "get_rng_state", "use_deterministic_algorithms", "init_num_threads", "get_device_module",
    "get_file_path", "parse_ir", "parse_schema", "parse_type_comment", "fork", "script",
    "prepare_multiprocessing_environment", "PyTorchFileReader", "PyTorchFileWriter",
    # higher-order control flow (runs through the compiler stack even in eager mode)
    "cond", "while_loop", "scan", "associative_scan",
    # tensor internals and memory
    "numpy", "data_ptr", "as_strided", "pin_memory", "grad_fn", "record_stream", "module_load",
    # Python introspection
    "format", "format_map", "mro", "with_traceback", "func_globals",
})

#: Attribute-name prefixes refused on any object (global setters, hooks, frames, code objects).
DENIED_ATTRIBUTE_PREFIXES: tuple[str, ...] = (
    "set_", "register_", "import_", "co_", "f_", "gi_", "cr_", "ag_", "tb_",
)

#: torch classes reward code may name (``isinstance(x, torch.Tensor)``, ``torch.finfo(...)``);
#: every other class reached from an allowed module is refused.
SAFE_TORCH_CLASSES: tuple[type, ...] = (
    torch.Tensor, torch.Size, torch.device, torch.dtype, torch.finfo, torch.iinfo, torch.Generator,
)

_REFUSED_NODES: dict[type, str] = {
    ast.ClassDef: "class definitions are not allowed",
    ast.Global: "'global' statements are not allowed",
    ast.Nonlocal: "'nonlocal' statements are not allowed",
    ast.Try: "try/except is not allowed (let errors surface; they are reported back)",
    ast.With: "'with' statements are not allowed",
    ast.AsyncWith: "'async with' is not allowed",
    ast.AsyncFor: "'async for' is not allowed",
    ast.AsyncFunctionDef: "async functions are not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' (generator functions) is not allowed",
    ast.YieldFrom: "'yield from' is not allowed",
    ast.Match: "'match' statements are not allowed",
}
if hasattr(ast, "TryStar"):  # Python >= 3.11
    _REFUSED_NODES[ast.TryStar] = "try/except* is not allowed"


class RewardCodeError(Exception):
    """Reward code was refused or failed; ``reason`` is the text sent back to the language model."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason



#: largest literal exponent / shift a top-level constant may use (runs in-process when code is loaded)
_MAX_CONSTANT_EXPONENT = 64


def _small_number(node: ast.expr) -> bool:
    value = node.operand if isinstance(node, ast.UnaryOp) else node
    return (isinstance(value, ast.Constant) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool)
            and abs(value.value) <= _MAX_CONSTANT_EXPONENT)


def _bounded_constant_op(node: ast.BinOp) -> bool:
    """A top-level constant expression that cannot blow up when the module is executed: powers and
    shifts only by small literal numbers (no ``9**9**9``, ``1 << 10**9``), and no repetition of
    sequences or strings (``[0] * 10**10``)."""
    if isinstance(node.op, (ast.Pow, ast.LShift, ast.RShift)):
        # no chains either: ((9**64)**64)**64 grows as fast as 9**9**9
        return _small_number(node.right) and not any(isinstance(n, ast.BinOp) for n in ast.walk(node.left))
    if isinstance(node.op, ast.Mult):
        seq = (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.JoinedStr)
        return not any(isinstance(side, seq) or (isinstance(side, ast.Constant) and isinstance(side.value, (str, bytes)))
                       for side in (node.left, node.right))
    return True


class _PolicyChecker:
    """Collects policy violations of one parsed module as ``(lineno, message)`` pairs."""

    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.problems: list[tuple[int, str]] = []
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        #: names bound to modules: provided ones plus aliases made by allowed imports
        self.roots: dict[str, types.ModuleType] = {"torch": torch, "math": math}

    def refuse(self, node: ast.AST, message: str) -> None:
        self.problems.append((getattr(node, "lineno", 0), message))

    # ------------------------------------------------------------------ top level
    def run(self) -> list[tuple[int, str]]:
        entry_defs: list[ast.FunctionDef] = []
        for stmt in self.tree.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.check_import(stmt)
            elif isinstance(stmt, ast.FunctionDef):
                if stmt.name == ENTRY_POINT:
                    entry_defs.append(stmt)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
                pass  # docstring / comment string
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                self.check_constant_assignment(stmt)
            elif type(stmt) not in _REFUSED_NODES:  # those get their own message below
                self.refuse(stmt, f"top-level '{type(stmt).__name__}' statement is not allowed; the top level may "
                                  "only hold imports of torch/math, function definitions and constant assignments")
        if not entry_defs:
            self.problems.append((0, f"no top-level function 'def {ENTRY_POINT}({', '.join(ENTRY_ARGS)})' found"))
        elif len(entry_defs) > 1:
            lines = ", ".join(str(d.lineno) for d in entry_defs)
            self.refuse(entry_defs[1], f"'{ENTRY_POINT}' is defined {len(entry_defs)} times (lines {lines}); define it once")
        else:
            self.check_signature(entry_defs[0])
        for node in ast.walk(self.tree):
            self.check_node(node)
        return sorted(self.problems, key=lambda p: p[0])

    def check_signature(self, fn: ast.FunctionDef) -> None:
        a = fn.args
        names = tuple(arg.arg for arg in a.args)
        if a.posonlyargs or a.vararg or a.kwonlyargs or a.kwarg or a.defaults or names != ENTRY_ARGS:
            self.refuse(fn, f"'{ENTRY_POINT}' must take exactly the positional parameters "
                            f"({', '.join(ENTRY_ARGS)}) without defaults; got ({ast.unparse(a)})")

    def check_constant_assignment(self, stmt: ast.Assign | ast.AnnAssign) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for t in targets:
            if not isinstance(t, ast.Name):
                self.refuse(stmt, "top-level assignments must bind plain names (NAME = constant)")
            elif t.id == ENTRY_POINT:
                self.refuse(stmt, f"'{ENTRY_POINT}' must be a function definition, not an assignment")
        if stmt.value is None or not self.is_constant_expr(stmt.value):
            self.refuse(stmt, "top-level assignments may only hold constants (numbers, strings, tuples, "
                              "arithmetic on them, or attributes such as math.pi); compute the rest inside functions")

    def is_constant_expr(self, node: ast.expr) -> bool:
        if isinstance(node, (ast.Constant, ast.Name)):
            return True
        if isinstance(node, ast.Attribute):
            return self.is_constant_expr(node.value)
        if isinstance(node, ast.UnaryOp):
            return self.is_constant_expr(node.operand)
        if isinstance(node, ast.BinOp):
            return (self.is_constant_expr(node.left) and self.is_constant_expr(node.right)
                    and _bounded_constant_op(node))
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return all(self.is_constant_expr(e) for e in node.elts)
        if isinstance(node, ast.Dict):
            return all(k is not None and self.is_constant_expr(k) for k in node.keys) and all(
                self.is_constant_expr(v) for v in node.values)
        return False

    # ------------------------------------------------------------------ imports
    def check_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        allowed = "reward code may only import torch and math (both are already provided)"
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name not in ALLOWED_MODULES:
                    self.refuse(stmt, f"import of '{alias.name}' is not allowed; {allowed}")
                    continue
                if alias.asname is None:
                    top = alias.name.split(".")[0]
                    self.bind_root(stmt, top, importlib.import_module(top))
                else:
                    self.bind_root(stmt, alias.asname, importlib.import_module(alias.name))
            return
        module = "." * stmt.level + (stmt.module or "")
        if stmt.level or module not in ALLOWED_MODULES:
            self.refuse(stmt, f"import from '{module}' is not allowed; {allowed}")
            return
        mod = importlib.import_module(module)
        for alias in stmt.names:
            if alias.name == "*":
                self.refuse(stmt, f"'from {module} import *' is not allowed; import names explicitly")
                continue
            problem = _attribute_name_problem(alias.name)
            if problem:
                self.refuse(stmt, f"'from {module} import {alias.name}': {problem}")
                continue
            obj, problem = _resolve_step(mod, alias.name, f"{module}.{alias.name}")
            if problem:
                self.refuse(stmt, problem)
                continue
            bound = alias.asname or alias.name
            if isinstance(obj, types.ModuleType):
                self.bind_root(stmt, bound, obj)
            elif bound in self.roots:
                self.refuse(stmt, f"'{bound}' already names module {self.roots[bound].__name__}; pick another name")

    def bind_root(self, stmt: ast.AST, name: str, module: types.ModuleType) -> None:
        if name in FORBIDDEN_NAMES or name.startswith("__"):
            self.refuse(stmt, f"the name '{name}' is not allowed")
        elif name in self.roots and self.roots[name] is not module:
            self.refuse(stmt, f"'{name}' already names module {self.roots[name].__name__}; pick another alias")
        else:
            self.roots[name] = module

    # ------------------------------------------------------------------ every node
    def check_node(self, node: ast.AST) -> None:
        refused = _REFUSED_NODES.get(type(node))
        if refused:
            self.refuse(node, refused)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and self.parents.get(node) is not self.tree:
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else ["." * node.level + (node.module or "")]
            bad = [m for m in modules if m not in ALLOWED_MODULES]
            if bad:
                self.refuse(node, f"import of '{bad[0]}' is not allowed; reward code may only import torch and math")
            else:
                self.refuse(node, "imports are only allowed at the top level of the code")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if getattr(node, "decorator_list", None):
                self.refuse(node, "decorators are not allowed")
            if isinstance(node, ast.FunctionDef):
                self.check_bound_name(node, node.name)
        elif isinstance(node, ast.arg):
            self.check_bound_name(node, node.arg)
        elif isinstance(node, ast.Name):
            self.check_name(node)
        elif isinstance(node, ast.Attribute):
            self.check_attribute(node)

    def check_bound_name(self, node: ast.AST, name: str) -> None:
        """A defined, assigned or read name: refused when forbidden or when it rebinds a module."""
        if name in FORBIDDEN_NAMES or name.startswith("__"):
            self.refuse(node, f"the name '{name}' is not allowed")
        elif name in self.roots:
            self.refuse(node, f"'{name}' names a module and cannot be rebound")

    def check_name(self, node: ast.Name) -> None:
        if not (node.id in self.roots and isinstance(node.ctx, ast.Load)):
            self.check_bound_name(node, node.id)  # forbidden names, and module names being rebound
            return
        parent = self.parents.get(node)
        if not (isinstance(parent, ast.Attribute) and parent.value is node):
            self.refuse(node, f"module '{node.id}' may only be used as {node.id}.<name>, "
                              "not passed, returned or assigned")

    def check_attribute(self, node: ast.Attribute) -> None:
        problem = _attribute_name_problem(node.attr)
        if problem:
            self.refuse(node, problem)
            return
        if not isinstance(node.ctx, ast.Load):
            self.refuse(node, f"assigning or deleting attributes ('.{node.attr} = ...') is not allowed")
            return
        parent = self.parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return  # the outermost attribute of the chain resolves the whole chain
        chain: list[str] = []
        base: ast.expr = node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if not (isinstance(base, ast.Name) and base.id in self.roots):
            return
        obj: Any = self.roots[base.id]
        path = base.id
        for attr in reversed(chain):
            if _attribute_name_problem(attr):
                return  # reported on the inner node
            path = f"{path}.{attr}"
            obj, problem = _resolve_step(obj, attr, path)
            if problem:
                self.refuse(node, problem)
                return
        if isinstance(obj, types.ModuleType):
            self.refuse(node, f"module '{path}' may only be used as {path}.<name>, not as a value "
                              f"(write 'import {obj.__name__} as NAME' at the top instead)")


def _attribute_name_problem(attr: str) -> str | None:
    """Why the attribute name ``attr`` is refused on any object, or ``None``."""
    if attr.startswith("_"):
        return f"access to the private/dunder attribute '{attr}' is not allowed"
    if attr in DENIED_ATTRIBUTES or attr.startswith(DENIED_ATTRIBUTE_PREFIXES):
        return f"the attribute '{attr}' is not allowed in reward code"
    if attr.endswith("_"):
        return (f"in-place tensor method '{attr}' is not allowed (reward code must not modify its inputs); "
                f"use the out-of-place '{attr[:-1]}'")
    return None


def _resolve_step(obj: Any, attr: str, path: str) -> tuple[Any, str | None]:
    """``getattr(obj, attr)`` for a chain rooted at an allowed module, with the object-kind policy."""
    try:
        value = getattr(obj, attr)
    except AttributeError:
        return None, f"'{path}' does not exist (no attribute '{attr}' in {getattr(obj, '__name__', obj)!s})"
    if isinstance(value, types.ModuleType) and value.__name__ not in ALLOWED_MODULES:
        return None, (f"module '{path}' is not available in reward code (allowed modules: "
                      f"{', '.join(ALLOWED_MODULES)})")
    if isinstance(value, type) and value not in SAFE_TORCH_CLASSES:
        return None, (f"class '{path}' is not available in reward code (allowed classes: "
                      f"{', '.join('torch.' + c.__name__ for c in SAFE_TORCH_CLASSES)})")
    return value, None


def _parse(code: str, max_chars: int) -> ast.Module:
    if not isinstance(code, str):
        raise RewardCodeError(f"reward code must be a string, got {type(code).__name__}")
    if len(code) > max_chars:
        raise RewardCodeError(f"the code is {len(code)} characters long; the limit is {max_chars}")
    try:
        return ast.parse(code, filename=REWARD_FILENAME, mode="exec")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        text = f"\n    {exc.text.rstrip()}" if exc.text else ""
        raise RewardCodeError(f"syntax error at {where}: {exc.msg}{text}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise RewardCodeError(f"the code cannot be parsed: {type(exc).__name__}: {exc}") from None


def check_code(code: str, max_chars: int = DEFAULT_MAX_CHARS) -> None:
    """Apply the AST policy to ``code``; raise :class:`RewardCodeError` listing every violation.

    Each violation names its line (``line 3: ...``) and the refused name, attribute or statement.
    """
    tree = _parse(code, max_chars)
    problems = _PolicyChecker(tree).run()
    if problems:
        lines = [f"line {ln}: {msg}" if ln else msg for ln, msg in problems]
        raise RewardCodeError("the reward code was refused by the sandbox policy:\n" + "\n".join(lines))


# ---------------------------------------------------------------------------------------- builtins
def _guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``__import__`` for reward code: only :data:`ALLOWED_MODULES` (``import torch`` stays a no-op)."""
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
    """Check ``code``, execute its top level with restricted builtins, return ``compute_reward``."""
    check_code(code, max_chars)
    code_obj = compile(code, REWARD_FILENAME, "exec", dont_inherit=True)
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


# ---------------------------------------------------------------------------------------- outputs
def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)} and dtype {value.dtype}"
    return f"a value of type {type(value).__name__}"


def check_reward_outputs(result: Any, num_envs: int, device: torch.device, *,
                         check_finite: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Validate what ``compute_reward`` returned; return ``(reward float32[N], components)``.

    Shape, dtype and device checks read metadata only; ``check_finite`` adds one host sync for all
    tensors together. Raises :class:`RewardCodeError` naming the offending value.
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
    for key, value in components.items():
        if not isinstance(key, str):
            raise RewardCodeError(f"component key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise RewardCodeError(f"component '{key}' must be a torch.Tensor of shape [{n}]; got {_describe(value)}")
        if value.is_complex():
            raise RewardCodeError(f"component '{key}' has complex dtype {value.dtype}")
        if tuple(value.shape) != (n,):
            raise RewardCodeError(f"component '{key}' has shape {list(value.shape)}; expected [{n}]")
        if value.device != device:
            raise RewardCodeError(f"component '{key}' is on device {value.device}; expected {device}")
    if check_finite:
        tensors = [("reward", reward)] + [(f"component '{k}'", v) for k, v in components.items()]
        flags = torch.stack([torch.isfinite(t).all() for _, t in tensors]).tolist()  # the one host sync
        for (label, t), ok in zip(tensors, flags):
            if not ok:
                nan = int(torch.isnan(t).sum())
                inf = int(torch.isinf(t).sum())
                raise RewardCodeError(f"{label} has non-finite values: {nan} NaN and {inf} inf out of {n}")
    return reward.float(), components


class RewardFunction:
    """Compiled reward code, called in-process: ``(state, action, next_state) -> (reward, components)``.

    ``state``/``next_state``: dict[str, Tensor[N, ...]]; ``action``: Tensor[N, ...]. Returns
    ``reward`` float32[N] on ``action.device`` and ``components`` dict[str, Tensor[N]]. Runs under
    ``torch.no_grad()``; the dicts passed in are shallow copies. Exceptions of the reward code and
    bad outputs become :class:`RewardCodeError` (with the user's line numbers). There is no time or
    memory limit in-process: that is what :func:`validate_in_subprocess` is for.
    """

    def __init__(self, code: str, *, check_outputs: bool = True, validation: ValidationReport | None = None,
                 max_chars: int = DEFAULT_MAX_CHARS):
        self.code = code
        self.check_outputs = check_outputs
        self.validation = validation
        self._fn = _load_entry(code, max_chars)
        self._component_names: tuple[str, ...] = tuple(validation.component_names) if validation else ()

    @property
    def component_names(self) -> tuple[str, ...]:
        """Names of the components (from validation, else from the first call; empty before)."""
        return self._component_names

    def __call__(self, state: Mapping[str, torch.Tensor], action: torch.Tensor,
                 next_state: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        try:
            with torch.no_grad():
                result = self._fn(dict(state), action, dict(next_state))
        except RewardCodeError:
            raise
        except Exception as exc:
            raise RewardCodeError(f"{ENTRY_POINT} raised an exception:\n" + format_user_exception(exc, self.code)) from exc
        reward, components = check_reward_outputs(result, action.shape[0], action.device,
                                                  check_finite=self.check_outputs)
        if not self._component_names:
            self._component_names = tuple(components)
        return reward, components

    def __repr__(self) -> str:
        return f"RewardFunction(components={list(self._component_names)}, lines={len(self.code.splitlines())})"


# ---------------------------------------------------------------------------------------- subprocess
@dataclass
class ValidationReport:
    """Outcome of :func:`validate_in_subprocess`.

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


#: Substrings of environment-variable names that mark them as secrets (case-insensitive).
SECRET_NAME_MARKERS: tuple[str, ...] = (
    "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "PRIVATE", "COOKIE", "SESSION",
)
_SECRET_VALUE = re.compile(r"^(sk-|ghp_|gho_|github_pat_|hf_|xox[abp]-|AKIA)")
_DROPPED_PYTHON_VARS = ("PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONBREAKPOINT", "PYTHONHOME")


def child_environment(parent_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the validation child: ``parent_env`` (default ``os.environ``) without
    variables whose name contains a :data:`SECRET_NAME_MARKERS` marker or whose value looks like a
    known token format, with one-thread math libraries."""
    source = os.environ if parent_env is None else parent_env
    env = {k: v for k, v in source.items()
           if not any(m in k.upper() for m in SECRET_NAME_MARKERS)
           and not _SECRET_VALUE.match(v) and k not in _DROPPED_PYTHON_VARS}
    env.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    return env


_BOOTSTRAP = (
    "import sys, importlib.util\n"
    "sys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"
    "spec = importlib.util.spec_from_file_location('rlreward_sandbox_child', sys.argv[1])\n"
    "mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod\n"
    "spec.loader.exec_module(mod)\n"
    "sys.exit(mod._child_main(sys.argv[2]))\n"
)


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
                           max_chars: int = DEFAULT_MAX_CHARS) -> ValidationReport:
    """Run ``compute_reward`` once on ``sample`` in a fresh, limited Python process.

    ``sample = {"state": dict[str, Tensor[N, ...]], "action": Tensor[N, ...], "next_state": ...}``
    (see :func:`sample_states`) travels through a temporary file (``torch.save``, loaded with
    ``weights_only=True``). The child runs in that temporary directory with
    :func:`child_environment`, one torch thread, ``cpu_seconds`` of CPU time and ``memory_mb`` MiB
    of address space on top of what the interpreter with torch loaded already uses (for CUDA
    inputs, the same as a fraction of device memory); ``timeout_s`` bounds the wall-clock time,
    interpreter start included. The child checks the outputs (:func:`check_reward_outputs`) and
    that the inputs were not modified.

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
                       "max_chars": max_chars}, f)
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, os.path.abspath(__file__), workdir],
            cwd=workdir, env=child_environment(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        timed_out = False
        try:
            _, stderr = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            _, stderr = proc.communicate()
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
    tail = stderr.decode("utf-8", "replace")[-1500:].strip()
    if timed_out:
        error = (f"wall-clock time limit exceeded: validation did not finish within {timeout_s:g} s "
                 "(an endless loop, or very slow code?)")
    elif proc.returncode < 0 and -proc.returncode == signal.SIGXCPU:
        error = _cpu_limit_message(cpu_seconds)
    elif proc.returncode < 0 and -proc.returncode == signal.SIGKILL:
        error = ("the validation process was killed (SIGKILL): the CPU-time hard limit or the system's "
                 f"out-of-memory killer (limits: {cpu_seconds} s CPU, {memory_mb} MiB memory)")
    elif proc.returncode < 0:
        error = f"the validation process crashed with {_signal_name(-proc.returncode)}"
    else:
        error = f"the validation process exited with code {proc.returncode} without a result"
    if tail and not timed_out:
        error += f"\nlast lines of its error output:\n{tail}"
    return _finish(ValidationReport(ok=False, error=error, wall_time_s=wall), raise_on_error)


# ---------------------------------------------------------------------------------------- child side
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


def _set_limit(which: int, soft: int, hard: int) -> None:
    _, current_hard = resource.getrlimit(which)
    if current_hard != resource.RLIM_INFINITY:
        soft, hard = min(soft, current_hard), min(hard, current_hard)
    resource.setrlimit(which, (soft, hard))


def _apply_limits(cpu_seconds: int, memory_mb: int, device: torch.device) -> None:
    """CPU time (beyond what setup used), address space (beyond the current size), no core files,
    small files only (the result file), and a SIGXCPU handler that turns the limit into an error."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_soft = int(math.ceil(usage.ru_utime + usage.ru_stime)) + max(1, int(cpu_seconds))
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    _set_limit(resource.RLIMIT_CPU, cpu_soft, cpu_soft + 2)
    _set_limit(resource.RLIMIT_CORE, 0, 0)
    _set_limit(resource.RLIMIT_FSIZE, 1 << 20, 1 << 20)
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, memory_mb * 2**20 / total), device)
    vm = _vm_bytes()
    if vm:
        limit = vm + int(memory_mb) * 2**20
        _set_limit(resource.RLIMIT_AS, limit, limit)


def _is_memory_error(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError) or isinstance(exc, getattr(torch, "OutOfMemoryError", MemoryError)):
        return True
    text = str(exc).lower()
    return "can't allocate memory" in text or "out of memory" in text or "cannot allocate memory" in text


def _stats(t: torch.Tensor) -> dict[str, float]:
    t = t.detach().float()
    return {"mean": float(t.mean()), "min": float(t.min()), "max": float(t.max())}


def _run_child(request: dict[str, Any], sample: dict[str, Any]) -> dict[str, Any]:
    code = request["code"]
    check_code(code, int(request.get("max_chars", DEFAULT_MAX_CHARS)))  # the child checks again
    action: torch.Tensor = sample["action"]
    state, next_state = dict(sample["state"]), dict(sample["next_state"])
    inputs = {f"state['{k}']": v for k, v in state.items()}
    inputs.update({f"next_state['{k}']": v for k, v in next_state.items()})
    inputs["action"] = action
    originals = {label: t.clone() for label, t in inputs.items()}
    _apply_limits(int(request["cpu_seconds"]), int(request["memory_mb"]), action.device)
    fn = _load_entry(code, int(request.get("max_chars", DEFAULT_MAX_CHARS)))
    try:
        with torch.no_grad():
            result = fn(dict(state), action, dict(next_state))
    except (_CpuTimeExceeded, RewardCodeError):
        raise
    except BaseException as exc:  # noqa: BLE001 - everything the user code raises is reported
        if _is_memory_error(exc):
            raise RewardCodeError(f"memory limit exceeded: the reward code tried to allocate more memory than "
                                  f"the sandbox allows ({request['memory_mb']} MiB)\n"
                                  + format_user_exception(exc, code)) from exc
        raise RewardCodeError(f"{ENTRY_POINT} raised an exception:\n" + format_user_exception(exc, code)) from exc
    reward, components = check_reward_outputs(result, action.shape[0], action.device, check_finite=True)
    for label, before in originals.items():
        if not torch.equal(before, inputs[label]):
            raise RewardCodeError(f"{ENTRY_POINT} modified its input {label} in place; reward code must not "
                                  "change its inputs (work on copies, e.g. x = x.clone())")
    return {"ok": True, "error": "", "component_names": list(components),
            **{f"reward_{k}": v for k, v in _stats(reward).items()},
            "component_stats": {k: _stats(v) for k, v in components.items()}}


def _child_main(workdir: str) -> int:
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


# ---------------------------------------------------------------------------------------- env side
def _random_actions(space: Any, num_envs: int, gen: torch.Generator) -> torch.Tensor:
    """Seeded uniform random actions for a gymnasium space: int64[N] or float32[N, ...]."""
    kind = type(space).__name__
    if kind == "Discrete":
        start = int(getattr(space, "start", 0))
        return torch.randint(start, start + int(space.n), (num_envs,), generator=gen)
    if kind == "Box":
        low = torch.as_tensor(space.low, dtype=torch.float32).clamp(min=-1.0)
        high = torch.as_tensor(space.high, dtype=torch.float32).clamp(max=1.0)
        return low + (high - low) * torch.rand((num_envs, *low.shape), generator=gen)
    if kind == "MultiDiscrete":
        nvec = torch.as_tensor(space.nvec, dtype=torch.float64)
        return (torch.rand((num_envs, *nvec.shape), generator=gen, dtype=torch.float64) * nvec).long()
    if kind == "MultiBinary":
        return torch.randint(0, 2, (num_envs, *tuple(space.shape)), generator=gen)
    raise TypeError(f"cannot sample random actions for a {kind} action space")


def sample_states(env: BatchedEnv, num_steps: int = 8, seed: int = 0) -> dict[str, Any]:
    """Reset ``env`` (seed ``seed``), take ``num_steps`` seeded random actions, return the last transition.

    Returns ``{"state": dict[str, Tensor[N, ...]], "action": Tensor[N, ...], "next_state": ...}``
    with ``N = env.num_envs``: cloned ``env.get_state()`` before and after the last ``env.step``, on
    ``env.device``. The env is left wherever the random walk took it.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    env.reset(seed=seed)
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    action = torch.empty(0)
    for step in range(num_steps):
        action = _random_actions(env.single_action_space, env.num_envs, gen).to(env.device)
        if step == num_steps - 1:
            state = {k: v.clone() for k, v in env.get_state().items()}
        env.step(action)
    next_state = {k: v.clone() for k, v in env.get_state().items()}
    if not state:
        raise ValueError(f"{env!r}.get_state() is empty; reward code needs privileged state")
    return {"state": state, "action": action, "next_state": next_state}


def compile_reward(code: str, env: BatchedEnv | None, *, validate: bool = True, check_outputs: bool = True,
                   num_steps: int = 8, seed: int = 0, max_chars: int = DEFAULT_MAX_CHARS,
                   **limits: Any) -> RewardFunction:
    """Check, validate and compile reward code into a :class:`RewardFunction`.

    With ``validate`` (default), runs :func:`validate_in_subprocess` on :func:`sample_states` of
    ``env`` (which resets the env); ``limits`` are its ``timeout_s``, ``cpu_seconds``,
    ``memory_mb``. Raises :class:`RewardCodeError` (``.reason`` for the model) when the code is
    refused or fails. ``validate=False`` skips the subprocess (no time/memory limits: trusted code
    or tests only) and then ``env`` may be ``None``.
    """
    check_code(code, max_chars)
    report: ValidationReport | None = None
    if validate:
        if env is None:
            raise ValueError("compile_reward(validate=True) needs an env to sample states from")
        report = validate_in_subprocess(code, sample_states(env, num_steps=num_steps, seed=seed),
                                        max_chars=max_chars, raise_on_error=True, **limits)
    return RewardFunction(code, check_outputs=check_outputs, validation=report, max_chars=max_chars)


__all__ = [
    "ALLOWED_MODULES", "DENIED_ATTRIBUTES", "FORBIDDEN_NAMES", "SAFE_BUILTINS", "RewardCodeError",
    "RewardFunction", "ValidationReport", "check_code", "check_reward_outputs", "child_environment",
    "compile_reward", "format_user_exception", "sample_states", "validate_in_subprocess",
]
