"""Faults as tests: the training app and the reward search, SIGKILLed at random moments and resumed.

Each test runs the real command line (``python -m rlcore.train`` / ``python -m
rewards.llm.search.synthesize``) as a subprocess in one run directory, sends it ``SIGKILL`` at a few
moments drawn with ``random.Random(0)``, starts it again with ``resume=true`` after each kill, and
checks that the run that finally completes is the run an uninterrupted command would have left:
every record parses, nothing is lost or duplicated, every checkpoint verifies, no temporary file is
left behind.

Moments are picked by polling the run directory, so they fall in a chosen phase whatever the
machine's speed: start-up (interpreter, config, resume), mid-rollout, mid-checkpoint-write, the
final evaluation (training); start-up, validation of a reply, a candidate's training, right after a
result, mid-write of a JSON record, the final evaluation (search). A write lasts milliseconds; to
kill inside one, the subprocess is started through a launcher that writes that one file in two
halves with a pause between them (the kill itself is a real ``SIGKILL`` from outside).

Bounded: a fixed number of kills, each wait has a timeout, and once a test's time budget is spent
no further kill is sent (the run is then only resumed to the end). After each kill of the search,
no child process (training worker, validation child) may outlive it. The default suite runs a
3-kill training test and a 2-kill search test; ``-m slow`` runs 6 and 6 kills (the search there
without bubblewrap, so the children's parent-death signal is what stops them).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL") or not Path("/proc/self").exists(),
                                reason="needs POSIX SIGKILL and /proc")

#: ``python -c LAUNCHER <module> [args]``: runs ``python -m <module> [args]``. With
#: ``KILL_TEST_SLOW_WRITE`` set to ``<seconds>:<name>,<name>...``, a ``torch.save`` or
#: ``Path.write_text`` to a file whose name starts with one of the names writes half the file,
#: pauses, then writes the rest, so that a kill from outside can land inside that write.
LAUNCHER = """
import io, os, pathlib, runpy, sys, time
slow = os.environ.get("KILL_TEST_SLOW_WRITE")
if slow:
    pause, names = float(slow.split(":", 1)[0]), tuple(slow.split(":", 1)[1].split(","))
    def halves(path, data, mode):
        with open(path, mode) as out:
            out.write(data[: len(data) // 2])
            out.flush()
            time.sleep(pause)
            out.write(data[len(data) // 2:])
        return len(data)
    import torch
    real_save, real_write_text = torch.save, pathlib.Path.write_text
    def slow_save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)) or not os.path.basename(f).startswith(names):
            return real_save(obj, f, *args, **kwargs)
        buf = io.BytesIO()
        real_save(obj, buf, *args, **kwargs)
        halves(f, buf.getvalue(), "wb")
    def slow_write_text(self, data, *args, **kwargs):
        if not self.name.startswith(names):
            return real_write_text(self, data, *args, **kwargs)
        return halves(self, data, "w")
    torch.save, pathlib.Path.write_text = slow_save, slow_write_text
module = sys.argv.pop(1)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


# ----------------------------------------------------------------------------------------- harness
@dataclass
class Kill:
    """One kill: the phase aimed at, seconds after the attempt's start, its exit status, what was seen."""

    phase: str
    at_s: float
    returncode: int
    note: str = ""

    @property
    def landed(self) -> bool:
        return self.returncode == -signal.SIGKILL


@dataclass
class Attempts:
    """Starts one command again and again in one run directory; every attempt's output goes to its own log."""

    argv: list[str]
    log_dir: Path
    budget_s: float
    env: dict[str, str] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    def start(self, extra_env: Optional[dict[str, str]] = None) -> tuple[subprocess.Popen, float]:
        """Start an attempt; returns the process and the wall-clock time (``time.time()``) just before it."""
        log = self.log_dir / f"attempt{len(self.logs)}.log"
        self.logs.append(log)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **self.env, **(extra_env or {})}
        started = time.time()
        with open(log, "w") as out:
            proc = subprocess.Popen(self.argv, cwd=self.log_dir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        return proc, started

    def kill(self, proc: subprocess.Popen, phase: str, started: float, note: str = "") -> Kill:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        kill = Kill(phase, time.time() - started, proc.returncode, note)
        self.kills.append(kill)
        return kill

    def finish(self, timeout_s: float = 240.0) -> int:
        """One last attempt, not killed; its exit status."""
        proc, _ = self.start()
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"the final resume did not finish in {timeout_s:.0f} s; log: {self.tail()}")

    def over_budget(self) -> bool:
        return time.monotonic() - self.t0 > self.budget_s

    def tail(self, n: int = 3000) -> str:
        text = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-n:]}" for p in self.logs[-2:] if p.exists())
        kills = "; ".join(f"{k.phase}@{k.at_s:.2f}s rc={k.returncode} {k.note}" for k in self.kills)
        return f"kills: {kills}\n{text}"


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, timeout_s: float, poll_s: float = 0.01) -> bool:
    """Poll ``condition`` until it holds (True) or the process ends or the time is up (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(poll_s)
    return False


def sleep_unless_done(proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))


def new_file(pattern: str, root: Path, since: float) -> Callable[[], bool]:
    """A condition: some file matching ``pattern`` under ``root`` was written at or after ``since``."""
    def check() -> bool:
        for p in root.glob(pattern):
            try:
                if p.stat().st_mtime >= since:
                    return True
            except FileNotFoundError:  # renamed or removed between glob and stat
                continue
        return False
    return check


def temp_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.tmp"))


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes (not zombies) whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
        if text in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_no_processes(text: str, timeout_s: float = 5.0) -> list[int]:
    """Wait until no process mentions ``text``; returns the ones left (each then killed, by pid)."""
    deadline = time.monotonic() + timeout_s
    left = processes_mentioning(text)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_mentioning(text)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


# ---------------------------------------------------------------------------------- training app
STEPS_PER_ITER = 8 * 16  # env.num_envs x algo.params.n_steps
TOTAL = 2048
CKPT_EVERY = 256
TRAIN_ARGS = [
    "env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=8", "algo.params.n_steps=16", "eval.num_episodes=4",
    "progress_bar=false", "logger=minimal", f"total_timesteps={TOTAL}", f"checkpoint.every_timesteps={CKPT_EVERY}",
    "checkpoint.keep_last=3", "eval.every_timesteps=512", "num_threads=1", "resume=true",
]
SLOW_WRITE_S = 0.4


def read_progress(path: Path) -> tuple[list[str], list[dict]]:
    """Header and rows of a progress.csv; every row must have exactly the header's fields."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    for i, row in enumerate(rows):
        assert None not in row and None not in row.values(), f"{path}: row {i + 1} does not match the header: {row}"
    return header, rows


def last_step(run_dir: Path) -> int:
    """The ``time/timesteps`` of the last complete progress.csv row (0 when there is none)."""
    try:
        lines = (run_dir / "progress.csv").read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(lines[1:]):
        try:
            return int(float(line.split(",", 1)[0]))
        except ValueError:
            continue
    return 0


def check_checkpoints(run_dir: Path) -> list[int]:
    """Every numbered checkpoint (and final_model.pt, when there) loads and passes its checksum; their steps."""
    from algorithms.ppo import CHECKPOINT_FORMAT
    from rlcore.checkpoint import load_checkpoint, numbered_checkpoints

    steps = []
    for step, path in numbered_checkpoints(run_dir / "checkpoints"):
        payload = load_checkpoint(path, CHECKPOINT_FORMAT)  # raises CheckpointError on a bad checksum
        assert int(payload["num_timesteps"]) == step, path
        steps.append(step)
    if (run_dir / "final_model.pt").exists():
        load_checkpoint(run_dir / "final_model.pt", CHECKPOINT_FORMAT)
    return steps


def kill_training(att: Attempts, run_dir: Path, phase: str, rng: random.Random, startup_s: list[float]) -> None:
    """Start the training app (resume=true) and SIGKILL it at a random moment of ``phase``."""
    from rlcore.checkpoint import numbered_checkpoints

    ckpt = run_dir / "checkpoints"
    before = max((s for s, _ in numbered_checkpoints(ckpt)), default=0)  # where this attempt resumes
    if phase in ("rollout", "checkpoint-write") and before >= TOTAL - STEPS_PER_ITER:
        phase = "start-up"  # no iteration (nor a checkpoint before the last) left to interrupt
    slow = ""
    if phase == "checkpoint-write":
        target = rng.choice([s for s in range(CKPT_EVERY, TOTAL + 1, CKPT_EVERY) if s > before])
        slow = f"ckpt_{target}.pt"
    elif phase == "final":
        slow = f"ckpt_{TOTAL}.pt,final_model.pt"
    proc, started = att.start({"KILL_TEST_SLOW_WRITE": f"{SLOW_WRITE_S}:{slow}"} if slow else {})
    note = ""
    if phase == "start-up":  # interpreter, Hydra, env and learner, loading the checkpoint, rewriting progress.csv
        sleep_unless_done(proc, rng.uniform(0.3, 1.0) * startup_s[-1])
    elif phase == "rollout":  # inside an iteration: rollout, update, logging, evaluation
        target = STEPS_PER_ITER * rng.randint(before // STEPS_PER_ITER + 1, TOTAL // STEPS_PER_ITER - 1)
        progress = run_dir / "progress.csv"
        # rows past the checkpoint stay in the file until the resumed logger rewrites it: wait for new ones
        if wait_for(lambda: last_step(run_dir) > before and progress.stat().st_mtime >= started, proc, 60):
            startup_s.append(time.time() - started)
        wait_for(lambda: last_step(run_dir) >= target and progress.stat().st_mtime >= started, proc, 60)
        sleep_unless_done(proc, rng.uniform(0.0, 0.15))
        note = f"after row {target}"
    elif phase == "checkpoint-write":  # half of ckpt_<target>.pt.tmp written
        wait_for(new_file(f"ckpt_{target}.pt.tmp", ckpt, started), proc, 60)
        note = f"ckpt_{target}.pt.tmp"
    elif phase == "final":  # the last checkpoint, the final evaluation, final_model.pt, summary.json
        wait_for(new_file(f"ckpt_{TOTAL}.pt.tmp", ckpt, started), proc, 60)
        sleep_unless_done(proc, rng.uniform(0.0, 3 * SLOW_WRITE_S))
    else:
        raise ValueError(phase)
    kill = att.kill(proc, phase, started, note)
    left = [p.name for p in temp_files(run_dir)]
    kill.note += f" step={last_step(run_dir)} tmp={left}"
    if phase == "checkpoint-write":
        assert kill.landed and f"ckpt_{target}.pt.tmp" in left, f"the kill missed the checkpoint write\n{att.tail()}"
    # true at any moment, killed or not: progress.csv parses and every checkpoint on disk verifies
    if (run_dir / "progress.csv").exists():
        read_progress(run_dir / "progress.csv")
    check_checkpoints(run_dir)


def run_killed_training(tmp_path: Path, phases: list[str], budget_s: float) -> None:
    pytest.importorskip("hydra")
    rng = random.Random(0)
    run_dir = tmp_path / "run"
    att = Attempts([sys.executable, "-c", LAUNCHER, "rlcore.train", *TRAIN_ARGS, f"hydra.run.dir={run_dir}"],
                   tmp_path, budget_s)
    startup_s = [3.0]  # seconds to the first new progress row; measured on each mid-rollout attempt
    for phase in phases:
        if att.over_budget():
            break
        kill_training(att, run_dir, phase, rng, startup_s)
    rc = att.finish()
    print(f"training: {len(att.logs)} attempts in {time.monotonic() - att.t0:.1f} s; " + att.tail(0).splitlines()[0])
    assert rc == 0, att.tail()
    assert sum(k.landed for k in att.kills) >= min(2, len(phases)), att.tail()

    header, rows = read_progress(run_dir / "progress.csv")
    steps = [int(r["time/timesteps"]) for r in rows]
    assert steps == list(range(STEPS_PER_ITER, TOTAL + 1, STEPS_PER_ITER)), f"{steps}\n{att.tail()}"
    assert [int(r["time/iteration"]) for r in rows] == list(range(1, len(rows) + 1))
    evals = [int(r["time/timesteps"]) for r in rows if r["eval/success_rate"] != ""]
    assert evals == list(range(512, TOTAL + 1, 512)), evals
    assert all(math.isfinite(float(r["loss/value"])) for r in rows)

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["total_timesteps"] == steps[-1] == TOTAL
    assert summary["env_id"] == "MiniGrid-Empty-5x5-v0" and summary["final_model"] == str(run_dir / "final_model.pt")
    assert summary["resumed_from"] is not None and Path(summary["resumed_from"]).parent == run_dir / "checkpoints"
    assert 0.0 <= summary["eval_success_rate"] <= 1.0 and summary["eval_episodes"] == 4
    # the last row's evaluation (after the last update) and the final one (same weights, same seeds) agree
    for key in ("return_mean", "success_rate", "length_mean"):
        assert summary[f"eval_{key}"] == pytest.approx(float(rows[-1][f"eval/{key}"])), (key, att.tail())
    assert summary["wall_time_s"] > 0 and summary["fps"] > 0

    kept = check_checkpoints(run_dir)
    assert kept and kept[-1] == TOTAL and len(kept) <= 3 and all(s % CKPT_EVERY == 0 for s in kept), kept
    assert temp_files(run_dir) == [], att.tail()

    import torch

    from algorithms.ppo import PPO
    from rlcore.make_env import make_env
    from omegaconf import OmegaConf

    model = PPO.load(str(run_dir / "final_model.pt"))
    assert model.num_timesteps == TOTAL
    env = make_env(OmegaConf.load(run_dir / "config.yaml").env, torch.device("cpu"), seed=0, num_envs=2)
    obs, _ = env.reset(seed=0)
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (2,) and all(0 <= int(a) < env.single_action_space.n for a in actions)


def test_training_killed_three_times_resumes_to_the_same_run(tmp_path):
    """~25 s: a kill inside a checkpoint write, one during the resumed start-up, one in the final phase."""
    run_killed_training(tmp_path, ["checkpoint-write", "start-up", "final"], budget_s=60)


@pytest.mark.slow
def test_training_killed_six_times_at_random_phases(tmp_path):
    rng = random.Random(0)
    middle = ["start-up", "rollout", "checkpoint-write", "rollout", "start-up"]
    rng.shuffle(middle)
    run_killed_training(tmp_path, [*middle, "final"], budget_s=60)


# ---------------------------------------------------------------------- children of a killed parent
#: ``python -c PARENT <work> <isolation>``: starts a sleeping child through ``run_child`` from a thread
#: (as the search does from its pool); the child touches ``<work>/started`` and names ``<work>`` in its argv
PARENT = """
import sys, threading
from rewards.llm.sandbox.process import child_environment, run_child
work, isolation = sys.argv[1], sys.argv[2]
code = "import os, sys, time; open(os.path.join(sys.argv[1], 'started'), 'w').close(); time.sleep(120)"
thread = threading.Thread(target=run_child, args=([sys.executable, "-c", code, work],),
                          kwargs=dict(cwd=work, env=child_environment(), timeout_s=300, isolation=isolation))
thread.start()
thread.join()
"""


@pytest.mark.parametrize("isolation", ["off", "bwrap"])
def test_a_child_dies_with_its_killed_parent(tmp_path, isolation):
    """A SIGKILLed search takes its workers and validation children with it, isolated by bwrap or not."""
    from rewards.llm.sandbox.process import bwrap_available

    if isolation == "bwrap" and bwrap_available() is not None:
        pytest.skip(f"no OS isolation here: {bwrap_available()}")
    work = tmp_path / "work"
    work.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(work), isolation], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: (work / "started").exists(), parent, 60), "the child never started"
        assert processes_mentioning(str(work)), "the child is not found by its argv"
    finally:
        parent.kill()
        parent.wait()
    assert wait_no_processes(str(work), timeout_s=5.0) == [], "the child outlived its SIGKILLed parent"


# ---------------------------------------------------------------------------------- reward search
SEARCH_TOTAL = 1024
SEARCH_ARGS = [
    "env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=8", f"total_timesteps={SEARCH_TOTAL}", "eval.every_timesteps=512",
    "eval.num_episodes=8", "algo.params.n_steps=64", "search.workers=2", "search.baselines=false", "seed=0",
    "llm=offline", "resume=true",
]


def search_phase_condition(run_dir: Path, phase: str, started: float, iterations: int) -> Callable[[], bool]:
    """When a kill in ``phase`` may come (then a random delay follows): a file of that phase was just written."""
    if phase == "validation":  # reply.md is written, then the reply is extracted and validated in a child
        return new_file("iter_*/cand_*/reply.md", run_dir, started)
    if phase == "training":  # job.yaml is written as the candidate's worker starts
        return new_file("iter_*/cand_*/job.yaml", run_dir, started)
    if phase == "after-result":  # a result.json was written: the next candidate, search_state.json, the next request
        return new_file("iter_*/cand_*/result.json", run_dir, started)
    if phase == "final":  # every iteration recorded: the final evaluation, summary.json, report.md
        def every_iteration() -> bool:
            state = run_dir / "search_state.json"
            try:
                return (state.stat().st_mtime >= started
                        and len(json.loads(state.read_text())["iterations"]) == iterations)
            except (FileNotFoundError, ValueError, KeyError):
                return False
        return every_iteration
    raise ValueError(phase)


#: the random delay after a phase's condition holds, at most this many seconds
SEARCH_DELAY_S = {"validation": 1.0, "training": 4.0, "after-result": 0.3, "final": 2.0}


def kill_search(att: Attempts, run_dir: Path, phase: str, rng: random.Random, iterations: int, candidates: int,
                startup_s: list[float]) -> None:
    record = rng.choice(["iter_*/cand_*/result.json.tmp", "search_state.json.tmp"])
    if len(list(run_dir.glob("iter_*/cand_*/result.json"))) == iterations * candidates:
        record = "search_state.json.tmp"  # every candidate has its result; the state is written on every run
    slow = {"KILL_TEST_SLOW_WRITE": f"{SLOW_WRITE_S}:{Path(record).name}"} if phase == "record-write" else {}
    proc, started = att.start(slow)
    if phase == "start-up":  # imports, config, env context, loading the saved records
        sleep_unless_done(proc, rng.uniform(0.3, 1.0) * startup_s[-1])
    elif phase == "record-write":  # half of a record's temporary file written
        wait_for(new_file(record, run_dir, started), proc, 120, poll_s=0.01)
    else:
        if wait_for(new_file("env_context.json", run_dir, started), proc, 60, poll_s=0.02):
            startup_s.append(time.time() - started)
        wait_for(search_phase_condition(run_dir, phase, started, iterations), proc, 120, poll_s=0.02)
        sleep_unless_done(proc, rng.uniform(0.0, SEARCH_DELAY_S[phase]))
    kill = att.kill(proc, phase, started, Path(record).name if slow else "")
    if slow:
        assert kill.landed and list(run_dir.glob(record)), f"the kill missed the write of {record}\n{att.tail()}"
    # the workers and validation children run in their own sessions; none may outlive the search
    orphans = wait_no_processes(str(att.log_dir))
    kill.note += f" results={len(list(run_dir.glob('iter_*/cand_*/result.json')))} orphans={orphans}"
    assert not orphans, f"processes outlived the killed search: {orphans}\n{att.tail()}"


def check_search(run_dir: Path, iterations: int, candidates: int, reeval_seeds: int, log: str) -> None:
    """The records of a finished search: complete, parsing, consistent, each iteration and candidate once."""
    from rewards.llm.extract import extract_code
    from rewards.llm.search.records import fitness_of

    def read(path: Path):
        return json.loads(path.read_text())

    assert sorted(p.name for p in run_dir.glob("iter_*")) == [f"iter_{i:02d}" for i in range(iterations)], log
    every = []
    for it in range(iterations):
        it_dir = run_dir / f"iter_{it:02d}"
        replies = read(it_dir / "replies.json")
        assert len(replies) == candidates and all(isinstance(r.get("text"), str) for r in replies), log
        assert sorted(p.name for p in it_dir.glob("cand_*")) == [f"cand_{k:02d}" for k in range(candidates)], log
        for k in range(candidates):
            cand = it_dir / f"cand_{k:02d}"
            res = read(cand / "result.json")
            assert (res["iteration"], res["index"], res["name"]) == (it, k, f"iter{it:02d}_cand{k:02d}"), res
            assert res["status"] == "ok" and res["stage"] == "done" and res["error"] is None, (cand, res["error"], log)
            assert res["code"] == (cand / "code.py").read_text() == extract_code(replies[k]["text"])
            assert read(cand / "validation.json")["ok"] is True
            # its training run: one uninterrupted-looking run of the full budget
            _, rows = read_progress(cand / "train" / "progress.csv")
            assert [int(r["time/timesteps"]) for r in rows] == [512, 1024], cand
            assert read(cand / "train" / "summary.json")["total_timesteps"] == SEARCH_TOTAL
            assert [s for s, _ in res["stats"]["success"]] == [512, 1024]
            assert res["fitness"] == pytest.approx(fitness_of(res["stats"]["metric"], 3))
            every.append(res)

    state = read(run_dir / "search_state.json")
    assert [e["iteration"] for e in state["iterations"]] == list(range(iterations)), state["iterations"]
    assert all(e["ok"] == candidates and e["failed"] == 0 for e in state["iterations"]), state["iterations"]
    summary = read(run_dir / "summary.json")
    assert summary["iterations"] == state["iterations"]
    # the best: the first candidate (iteration, then index order) with the highest fitness
    top = max(r["fitness"] for r in every)
    best = next(r for r in every if r["fitness"] == top)
    assert summary["best"]["name"] == state["best"]["name"] == best["name"], (summary["best"], log)
    assert (run_dir / "best_reward.py").read_text() == best["code"]

    final = summary["final"]
    assert final["seeds"] == [1000 + j for j in range(reeval_seeds)]
    if reeval_seeds:
        runs = final["arms"]["best"]["runs"]
        assert sorted(runs) == [str(s) for s in final["seeds"]] and all(r["ok"] for r in runs.values()), final
        assert len(list(run_dir.glob("final/*/result.json"))) == reeval_seeds
    report = (run_dir / "report.md").read_text()
    assert f"{iterations * candidates} candidates, 0 failed." in report
    for it in range(iterations):
        for k in range(candidates):
            assert sum(line.startswith(f"| {it} | {k} | ok |") for line in report.splitlines()) == 1, report
    assert temp_files(run_dir) == [], log


def run_killed_search(tmp_path: Path, phases: list[str], iterations: int, candidates: int, reeval_seeds: int,
                      budget_s: float, extra: tuple[str, ...] = ()) -> None:
    pytest.importorskip("hydra")
    rng = random.Random(0)
    run_dir = tmp_path / "search"
    (tmp_path / "tmp").mkdir()
    args = [*SEARCH_ARGS, f"iterations={iterations}", f"candidates={candidates}", f"search.reeval_seeds={reeval_seeds}",
            f"run_dir={run_dir}", *extra]
    # TMPDIR under tmp_path: the children's temporary folders name it, so a leftover process is found by it
    att = Attempts([sys.executable, "-c", LAUNCHER, "rewards.llm.search.synthesize", *args], tmp_path, budget_s,
                   env={"TMPDIR": str(tmp_path / "tmp")})
    startup_s = [5.0]  # seconds to env_context.json; measured on each attempt that gets there
    for phase in phases:
        if att.over_budget():
            break
        kill_search(att, run_dir, phase, rng, iterations, candidates, startup_s)
    rc = att.finish()
    print(f"search: {len(att.logs)} attempts in {time.monotonic() - att.t0:.1f} s; " + att.tail(0).splitlines()[0])
    assert rc == 0, att.tail()
    assert sum(k.landed for k in att.kills) >= min(2, len(phases)), att.tail()
    check_search(run_dir, iterations, candidates, reeval_seeds, att.tail())


def test_search_killed_twice_resumes_without_losing_an_iteration(tmp_path):
    """~30 s: 2 iterations of 1 candidate; a kill in a candidate's training, one inside a record's write."""
    run_killed_search(tmp_path, ["training", "record-write"], iterations=2, candidates=1, reeval_seeds=0, budget_s=60)


@pytest.mark.slow
def test_search_killed_six_times_at_random_phases(tmp_path):
    rng = random.Random(0)
    middle = ["start-up", "validation", "training", "after-result", "record-write"]
    rng.shuffle(middle)
    run_killed_search(tmp_path, [*middle, "final"], iterations=2, candidates=2, reeval_seeds=1, budget_s=60,
                      extra=("search.isolation=off",))
