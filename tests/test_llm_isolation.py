"""OS isolation of the processes that run model-written code (bubblewrap), and their environment."""

from __future__ import annotations

import socket
import sys
import threading

import pytest

from rewards.llm.sandbox import process
from rewards.llm.sandbox.process import bwrap_available, child_environment, isolation_prefix, run_child

needs_bwrap = pytest.mark.skipif(bwrap_available() is not None, reason=f"no OS isolation here: {bwrap_available()}")


def _probe(tmp_path, code: str, **kw):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    result = run_child([sys.executable, "-c", code], cwd=work, env=child_environment(), timeout_s=60,
                       isolation="bwrap", **kw)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@needs_bwrap
def test_isolated_child_cannot_reach_a_server_the_parent_reaches(tmp_path):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept(), daemon=True).start()
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # the parent gets through
    out = _probe(tmp_path, f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=5); print("reached")
except OSError as e:
    print("refused", type(e).__name__)
""")
    server.close()
    assert out.startswith("refused")


@needs_bwrap
def test_isolated_child_writes_only_where_allowed(tmp_path):
    from pathlib import Path

    repo_file = Path(__file__).resolve().parents[1] / "escape_probe.txt"
    outside, allowed = tmp_path / "outside.txt", tmp_path / "allowed"
    allowed.mkdir()
    (tmp_path / "visible.txt").write_text("the parent's file")
    out = _probe(tmp_path, f"""
import os
def attempt(path):
    try:
        open(path, "w").write("x"); return "ok"
    except OSError as e:
        return type(e).__name__
print(attempt({str(repo_file)!r}), attempt({str(outside)!r}), attempt({str(allowed / 'f.txt')!r}),
      attempt("here.txt"), os.path.exists({str(tmp_path / 'visible.txt')!r}))
""", writable=[allowed])
    in_repo, _, in_writable, in_cwd, sees_parent_tmp = out.split()
    assert in_repo == "OSError" and not repo_file.exists()  # the filesystem is read-only
    assert not outside.exists()  # a write under /tmp lands in the child's private /tmp, not the parent's
    assert in_writable == "ok" and (allowed / "f.txt").exists() and in_cwd == "ok"
    assert sees_parent_tmp == "False"  # /tmp is private: the parent's temp files are hidden


@needs_bwrap
def test_isolated_child_sees_readable_paths_under_tmp(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "code.py").write_text("x = 1")
    out = _probe(tmp_path, f"print(open({str(data / 'code.py')!r}).read())", readable=[data])
    assert out == "x = 1"


def test_environment_is_an_allowlist():
    parent = {"PATH": "/usr/bin", "HOME": "/home/u", "LOCAL_LLM": "abc123", "DATABASE_URL": "postgres://u:p@h/db",
              "GH_PAT": "x", "HF_HUB": "y", "PYTHONPATH": "/src", "MY_SETTING": "1"}
    env = child_environment(parent)
    assert env["PATH"] == "/usr/bin" and env["HOME"] == "/home/u" and env["PYTHONPATH"] == "/src"
    for name in ("LOCAL_LLM", "DATABASE_URL", "GH_PAT", "HF_HUB", "MY_SETTING"):
        assert name not in env


def test_missing_bwrap_warns_loudly_or_refuses(monkeypatch):
    monkeypatch.setattr(process.shutil, "which", lambda name: None)
    process.bwrap_available.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="isolation=bwrap: bubblewrap"):
            isolation_prefix("bwrap", [])
        with pytest.warns(RuntimeWarning, match="WITHOUT OS isolation"):
            assert isolation_prefix("auto", []) == []
        assert isolation_prefix("off", []) == []
        with pytest.raises(ValueError, match="isolation must be one of"):
            isolation_prefix("chroot", [])
    finally:
        process.bwrap_available.cache_clear()
