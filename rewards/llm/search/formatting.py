"""Text helpers shared by the prompts, the offline proposer and the report: numbers and code fences."""

from __future__ import annotations

import math
from typing import Any


def format_number(x: Any, spec: str = ".3g", *, missing: str = "unknown", nan_is_missing: bool = False) -> str:
    """``x`` as ``format(float(x), spec)``; ``missing`` when it is not a number (``None``), or NaN with
    ``nan_is_missing`` (otherwise NaN and infinities print as ``nan``, ``inf``, ``-inf``)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return missing
    if nan_is_missing and math.isnan(value):
        return missing
    return format(value, spec)


def python_fence(code: str) -> str:
    """``code`` in a fenced markdown block tagged python (blank lines around the code removed)."""
    return "```python\n" + code.strip("\n") + "\n```"
