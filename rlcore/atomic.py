"""Atomic file writes: a temporary file in the same directory, flushed, then renamed into place, so a
kill at any moment leaves either the old file or the new one, never a partial one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Have ``write(tmp)`` write the file at a temporary path beside ``path``, then rename it into
    place; the temporary file is gone afterwards whatever happened. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (flushed to disk before the rename); returns the path."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    return atomic_write(path, write)


def remove_stale_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete ``*.tmp`` files an interrupted write left in ``directory``; returns what was removed."""
    removed = []
    for p in Path(directory).glob("*.tmp"):
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed
