"""The package layering, checked on the source: ``rlcore`` is the base, ``envs`` and ``rewards`` build
on it, ``algorithms`` on all of them.

Every ``import`` / ``from ... import`` is checked, wherever it is (module level, inside functions,
under ``TYPE_CHECKING``), and so is ``importlib.import_module("<module>")`` with a literal string.
Module names held as data (``SCHEMA_PROVIDERS``, ``_target_`` strings, ``batched_module``) are wiring
chosen at app start, not imports, and are not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rlcore", "envs", "rewards", "algorithms")

#: package -> top-level packages it must not import.
FORBIDDEN: dict[str, frozenset[str]] = {
    "rlcore": frozenset({"envs", "rewards", "algorithms"}),
    "envs": frozenset({"rewards", "algorithms"}),
    "rewards": frozenset({"algorithms"}),
    "algorithms": frozenset(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve_relative(module: str | None, level: int, path: Path) -> str:
    """The absolute module of ``from <level dots><module> import ...`` in ``path``."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, module] if module else base)


def _is_import_module_call(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr == "import_module"
    return isinstance(func, ast.Name) and func.id == "import_module"


def imported_modules(path: Path, source: str | None = None) -> list[tuple[int, str, str]]:
    """``(line, imported module, the statement as written)`` for every import in ``path``."""
    source = path.read_text() if source is None else source
    tree = ast.parse(source, filename=str(path))
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node.lineno, alias.name, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom):
            module = _resolve_relative(node.module, node.level, path) if node.level else (node.module or "")
            found.append((node.lineno, module, ast.unparse(node)))
        elif isinstance(node, ast.Call) and _is_import_module_call(node) and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value, ast.unparse(node)))
    return found


def violations(path: Path, source: str | None = None) -> list[str]:
    package = path.relative_to(ROOT).parts[0]
    forbidden = FORBIDDEN[package]
    out = []
    for line, module, statement in imported_modules(path, source):
        top = module.split(".")[0]
        if top in forbidden:
            out.append(f"{path.relative_to(ROOT)}:{line}: {package} must not import {top}: {statement}")
    return out


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_sources_found():
    names = {p.relative_to(ROOT).parts[0] for p in _sources()}
    assert names == set(PACKAGES)


def test_no_upward_imports():
    found = [v for path in _sources() for v in violations(path)]
    assert not found, "imports against the layering (rlcore < envs, rewards < algorithms):\n" + "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "import algorithms.ppo\n",
        "from envs.minigrid import make\n",
        "def f():\n    from rewards.intrinsic import rnd\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from algorithms import ppo\n",
        "import importlib\nm = importlib.import_module('algorithms.schemas')\n",
        "from importlib import import_module\nm = import_module('envs.minigrid')\n",
    ],
)
def test_checker_sees_forbidden_imports(snippet):
    path = ROOT / "rlcore" / "adapters" / "probe.py"
    found = violations(path, snippet)
    assert len(found) == 1 and "rlcore/adapters/probe.py:" in found[0], found


@pytest.mark.parametrize(
    "snippet",
    [
        "SCHEMA_PROVIDERS = ('algorithms.schemas',)\nimport importlib\nfor n in SCHEMA_PROVIDERS:\n"
        "    importlib.import_module(n)\n",
        "import rlcore.tensors\nfrom . import nets\nfrom .nets import GridEncoder\n",
        "batched_module = 'envs.minigrid'\n",
        "from .algorithms import helpers\n",  # rlcore.algorithms, a module of rlcore
    ],
)
def test_checker_allows_wiring_by_name(snippet):
    assert violations(ROOT / "rlcore" / "config.py", snippet) == []


def test_relative_imports_resolve():
    path = ROOT / "rewards" / "intrinsic" / "rnd.py"
    assert _resolve_relative("base", 1, path) == "rewards.intrinsic.base"
    assert _resolve_relative(None, 2, path) == "rewards"
    assert _resolve_relative("x", 1, ROOT / "rewards" / "intrinsic" / "__init__.py") == "rewards.intrinsic.x"
