"""The sandbox's static filter: the AST policy every piece of reward code passes before it runs.

:func:`check_code` parses the code and refuses, with one line per violation: anything but one
``compute_reward(state, action, next_state)``, imports other than torch/math, names like
``eval``/``open``/``getattr``, attributes starting with ``_``, every torch function and attribute
that is not on the allowlist (:mod:`.allowlist`; a denylist of dangerous names gives its own
message first), module attributes resolved at check time (``torch.utils``, ``torch.hub``, ...
refused), ``out=`` arguments, ``class``/``try``/``with``/``global``/``yield``/decorators, attribute assignment and
in-place tensor methods (``add_``). See ``docs/llm_sandbox.md``.

Only the standard library and torch are imported by the sandbox package (it is loaded by path in
the validation child, see :mod:`.child`).
"""

from __future__ import annotations

import ast
import difflib
import importlib
import math
import types
import typing
from typing import Any

import torch

from .allowlist import MODULE_FUNCTIONS, OBJECT_ATTRIBUTES, SAFE_TORCH_CLASSES

#: File name the reward code is compiled under; traceback frames with it are the user's frames.
REWARD_FILENAME = "<reward_code>"
ENTRY_POINT = "compute_reward"
ENTRY_ARGS = ("state", "action", "next_state")
DEFAULT_MAX_CHARS = 20_000
#: most components one call may return (each is logged and shown to the model in the reflection)
DEFAULT_MAX_COMPONENTS = 32
#: component names are cut to this many characters (after :func:`sanitize_component_name`)
MAX_COMPONENT_NAME_CHARS = 64
#: deepest nesting of the syntax tree (a 1500-term ``1+1+...+1`` is 1500 levels deep): deeper code is
#: refused before the checker, the compiler or ``exec`` could recurse that deep
MAX_AST_DEPTH = 100

#: Decorators that change nothing in eager mode and are removed before the code is checked and run
#: (written as ``torch.jit.<name>`` with ``torch`` or an alias of it): a model's TorchScript habit.
INERT_JIT_DECORATORS: frozenset[str] = frozenset({"script", "ignore", "unused", "export", "script_if_tracing"})


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


def _dotted(node: ast.expr) -> list[str] | None:
    """``["torch", "jit", "script"]`` for ``torch.jit.script``; ``None`` for anything but a name chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


def _check_depth(tree: ast.AST) -> None:
    """Refuse trees nested deeper than :data:`MAX_AST_DEPTH` (iteratively: no recursion here)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            line = getattr(node, "lineno", None)
            where = f" (at line {line})" if line else ""
            raise RewardCodeError(f"the code is nested too deeply{where}: more than {MAX_AST_DEPTH} levels of "
                                  "nested expressions or statements (e.g. a very long chain like 1 + 1 + ... + 1, "
                                  "or deeply nested brackets); split it into smaller steps")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Normaliser(ast.NodeTransformer):
    """Removes what models write out of habit and what never matters when the code runs eagerly:
    type annotations (arguments, returns, ``x: T = v`` becomes ``x = v``), ``from typing import ...`` /
    ``import typing`` and ``from __future__ import annotations`` at the top level, ``torch.jit.script``
    style decorators (:data:`INERT_JIT_DECORATORS`) and ``with torch.no_grad():`` (the code always
    runs under ``torch.no_grad()``; the block's body stays). It only removes code: everything that is
    left is checked by the policy and is exactly what runs. ``typing_names`` are the names the
    removed typing imports bound (the policy refuses them anywhere they are still used)."""

    def __init__(self, tree: ast.Module):
        self.torch_names = {"torch"}
        self.typing_names: set[str] = set()
        for stmt in tree.body:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.name == "torch" and alias.asname:
                        self.torch_names.add(alias.asname)

    # ------------------------------------------------------------------ imports
    @staticmethod
    def _bindable(name: str) -> bool:
        return not (name.startswith("_") or name in FORBIDDEN_NAMES or name in ("torch", "math"))

    def _typing_import(self, stmt: ast.stmt) -> bool:
        """Whether ``stmt`` is an import of typing names only (then it is removed)."""
        if isinstance(stmt, ast.Import):
            if not all(a.name == "typing" and self._bindable(a.asname or a.name) for a in stmt.names):
                return False
            self.typing_names.update(a.asname or a.name for a in stmt.names)
            return True
        if isinstance(stmt, ast.ImportFrom) and not stmt.level:
            if stmt.module == "__future__":
                return all(a.name == "annotations" and a.asname is None for a in stmt.names)
            if stmt.module != "typing":
                return False
            if not all(a.name != "*" and not a.name.startswith("_") and hasattr(typing, a.name)
                       and self._bindable(a.asname or a.name) for a in stmt.names):
                return False
            self.typing_names.update(a.asname or a.name for a in stmt.names)
            return True
        return False

    def visit_Module(self, node: ast.Module) -> ast.Module:
        node.body = [stmt for stmt in node.body if not self._typing_import(stmt)]
        self.generic_visit(node)
        return node

    # ------------------------------------------------------------------ annotations and decorators
    def _inert_decorator(self, node: ast.expr) -> bool:
        parts = _dotted(node)
        return (parts is not None and len(parts) == 3 and parts[0] in self.torch_names and parts[1] == "jit"
                and parts[2] in INERT_JIT_DECORATORS)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.decorator_list = [d for d in node.decorator_list if not self._inert_decorator(d)]
        node.returns = None
        a = node.args
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []),
                    *([a.kwarg] if a.kwarg else [])]:
            arg.annotation = None
        return self._visit_body(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt | None:
        if node.value is None:
            return None  # a bare declaration ``x: int`` does nothing
        return self.generic_visit(ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node))

    def visit_With(self, node: ast.With) -> Any:
        item = node.items[0] if len(node.items) == 1 else None
        call = item.context_expr if item is not None else None
        if (item is not None and item.optional_vars is None and isinstance(call, ast.Call) and not call.args
                and not call.keywords and (_dotted(call.func) or [None])[0] in self.torch_names
                and _dotted(call.func)[1:] == ["no_grad"]):
            body: list[ast.stmt] = []
            for stmt in node.body:
                out = self.visit(stmt)
                if isinstance(out, list):
                    body.extend(out)
                elif out is not None:
                    body.append(out)
            return body or [ast.copy_location(ast.Pass(), node)]
        return self._visit_body(node)

    def _visit_body(self, node: ast.AST) -> ast.AST:
        self.generic_visit(node)
        if isinstance(getattr(node, "body", None), list) and not node.body:
            node.body = [ast.copy_location(ast.Pass(), node)]  # a body left empty by removed declarations
        return node

    def generic_visit(self, node: ast.AST) -> ast.AST:
        node = super().generic_visit(node)
        if isinstance(node, (ast.If, ast.For, ast.While)) and not node.body:
            node.body = [ast.copy_location(ast.Pass(), node)]
        return node


class _PolicyChecker:
    """Collects policy violations of one parsed module as ``(lineno, message)`` pairs."""

    def __init__(self, tree: ast.Module, typing_names: frozenset[str] = frozenset()):
        self.tree = tree
        #: names bound by the (removed) typing imports: they exist only in annotations, which are removed
        self.typing_names = typing_names
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
        names: list[ast.expr] = []
        for t in targets:
            names.extend(t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])  # A, B = 1, 2
        for t in names:
            if not isinstance(t, ast.Name):
                self.refuse(stmt, "top-level assignments must bind plain names (NAME = constant, or A, B = 1, 2)")
            elif t.id == ENTRY_POINT:
                self.refuse(stmt, f"'{ENTRY_POINT}' must be a function definition, not an assignment")
        if stmt.value is None or not self.is_constant_expr(stmt.value):
            self.refuse(stmt, "top-level assignments may only hold constants (numbers, strings, tuples, "
                              "arithmetic on them, float('inf'), or attributes such as math.pi); compute the rest "
                              "inside functions")

    def is_constant_expr(self, node: ast.expr) -> bool:
        if isinstance(node, (ast.Constant, ast.Name)):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
                and not node.keywords and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and len(node.args[0].value) <= 10):
            return True  # float("inf"), float("-inf"), float("nan")
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
        allowed = ("reward code may only import torch and math (both are already provided), and names from "
                   "typing for annotations")
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
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "out":
                    self.refuse(node, "the 'out=' argument is not allowed (reward code must not write into "
                                      "existing tensors); use the returned value")

    def check_bound_name(self, node: ast.AST, name: str) -> None:
        """A defined, assigned or read name: refused when forbidden or when it rebinds a module."""
        if name in FORBIDDEN_NAMES or name.startswith("__"):
            self.refuse(node, f"the name '{name}' is not allowed")
        elif name in self.roots:
            self.refuse(node, f"'{name}' names a module and cannot be rebound")

    def check_name(self, node: ast.Name) -> None:
        if node.id in self.typing_names:
            self.refuse(node, f"'{node.id}' comes from typing and may only be used in type annotations "
                              "(which are removed before the code runs)")
            return
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
        chain: list[str] = []
        base: ast.expr = node
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if not (isinstance(base, ast.Name) and base.id in self.roots):
            problem = _object_attribute_problem(node.attr)  # x.sum(), d.items(): the allowlist of methods
            if problem:
                self.refuse(node, problem)
            return
        parent = self.parents.get(node)
        if isinstance(parent, ast.Attribute) and parent.value is node:
            return  # the outermost attribute of a module chain resolves the whole chain
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


def _suggest(attr: str, names: frozenset[str]) -> str:
    close = difflib.get_close_matches(attr, sorted(names), n=3, cutoff=0.75)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def _object_attribute_problem(attr: str) -> str | None:
    """Why ``<object>.attr`` (an object that is not an allowed module) is refused, or ``None``: only the
    names of :data:`~.allowlist.OBJECT_ATTRIBUTES` are allowed."""
    if attr in OBJECT_ATTRIBUTES:
        return None
    return (f"'.{attr}' is not one of the tensor methods and attributes reward code may use"
            f"{_suggest(attr, OBJECT_ATTRIBUTES)}; see 'Allowed calls' in docs/llm_sandbox.md")


def _resolve_step(obj: Any, attr: str, path: str) -> tuple[Any, str | None]:
    """``getattr(obj, attr)`` for a chain rooted at an allowed module, with the allowlist: on a module,
    an allowed submodule, a dtype, a number, a class of :data:`~.allowlist.SAFE_TORCH_CLASSES` or a
    function of :data:`~.allowlist.MODULE_FUNCTIONS`; on anything else (``torch.Tensor.sum``) a name
    of :data:`~.allowlist.OBJECT_ATTRIBUTES`."""
    if not isinstance(obj, types.ModuleType):
        problem = _object_attribute_problem(attr)
        if problem:
            return None, f"'{path}': {problem}"
    try:
        value = getattr(obj, attr)
    except AttributeError:
        return None, f"'{path}' does not exist (no attribute '{attr}' in {getattr(obj, '__name__', obj)!s})"
    if isinstance(value, types.ModuleType):
        if value.__name__ not in ALLOWED_MODULES:
            return None, (f"module '{path}' is not available in reward code (allowed modules: "
                          f"{', '.join(ALLOWED_MODULES)})")
        return value, None
    if isinstance(value, type):
        if value not in SAFE_TORCH_CLASSES:
            return None, (f"class '{path}' is not available in reward code (allowed classes: "
                          f"{', '.join('torch.' + c.__name__ for c in SAFE_TORCH_CLASSES)})")
        return value, None
    if not isinstance(obj, types.ModuleType):
        return value, None
    if isinstance(value, (torch.dtype, bool, int, float)) or attr in MODULE_FUNCTIONS.get(obj.__name__, ()):
        return value, None
    allowed = MODULE_FUNCTIONS.get(obj.__name__, frozenset())
    return None, (f"'{path}' is not one of the {obj.__name__} functions reward code may call"
                  f"{_suggest(attr, allowed)}; see 'Allowed calls' in docs/llm_sandbox.md")


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


def check_code(code: str, max_chars: int = DEFAULT_MAX_CHARS) -> ast.Module:
    """Apply the AST policy to ``code``; raise :class:`RewardCodeError` listing every violation.

    Each violation names its line (``line 3: ...``) and the refused name, attribute or statement.
    Returns the checked tree: the code with the inert habits :class:`_Normaliser` removes
    (annotations, typing imports, ``torch.jit`` decorators, ``with torch.no_grad():``) taken out;
    it is what :func:`~.runtime._load_entry` compiles. Any failure of the checker itself (a
    ``RecursionError``, ``MemoryError``, an error of :mod:`ast`) is a :class:`RewardCodeError` too.
    """
    try:
        tree = _parse(code, max_chars)
        _check_depth(tree)
        normaliser = _Normaliser(tree)
        tree = ast.fix_missing_locations(normaliser.visit(tree))
        problems = _PolicyChecker(tree, frozenset(normaliser.typing_names)).run()
    except RewardCodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a crash of the checker refuses the code, it must not stop the caller
        detail = str(exc)[:300]
        raise RewardCodeError(f"the sandbox could not check the code ({type(exc).__name__}: {detail}); "
                              "simplify it (shorter expressions, less nesting)") from None
    if problems:
        lines = [f"line {ln}: {msg}" if ln else msg for ln, msg in problems]
        raise RewardCodeError("the reward code was refused by the sandbox policy:\n" + "\n".join(lines))
    return tree

