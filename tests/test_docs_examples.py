"""The runnable examples of the docs run as written (each page's python blocks, in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: page -> lines its examples print (the printed figures the page quotes)
PAGES = {"offline.md": ["[3, 2, 2] [1.0, 0.0, 0.5]", "[8, 2] 50.0", "True [3, 2, 2]"]}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_python_examples_run(page, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert blocks, f"docs/{page} has no python example"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, f"docs/{page}", "exec"), namespace)  # noqa: S102 (the project's own docs)
    out = capsys.readouterr().out
    for line in PAGES[page]:
        assert line in out, f"docs/{page} no longer prints {line!r}"
