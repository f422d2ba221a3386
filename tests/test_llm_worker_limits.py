"""Resource limits of the reward search's training workers: memory, CPU time, file size, and the
deadline on each reward call.

Each bad reward below passes validation (8 rows) and misbehaves only on the training batches
(``n_steps * num_envs = 512`` rows), the case the validation child cannot catch. Every search is one
candidate through the scripted chat server; the assertions check the error text the proposer would
read back and that the candidate ended far below its wall-clock limit.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from llm_fake_server import FakeLLMServer, Step
from rewards.llm.sandbox import RewardCodeError, RewardFunction
from rewards.llm.sandbox.process import ChildLimits, ChildResult, child_environment, run_child
from rewards.llm.search.config_schemas import check_worker_limits
from rewards.llm.search.synthesize import synthesize
from rewards.llm.search.training import describe_exit, limits_for_device
from rlcore.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
#: the wall-clock limit of a candidate here: every failure below must come far sooner
CANDIDATE_TIMEOUT_S = 120
BASE = [
    "env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=8", "total_timesteps=2048", "eval.every_timesteps=1024",
    "eval.num_episodes=8", "algo.params.n_steps=64", "search.reeval_seeds=0", "search.baselines=false",
    "search.workers=1", "seed=0", "iterations=1", "candidates=1", f"search.candidate_timeout_s={CANDIDATE_TIMEOUT_S}",
]

#: a list that grows by 256 MiB per step on training batches (real memory: torch.empty, which would
#: only reserve address space, is not on the allowlist); the 3000 MiB limit stops it within a few steps
HOARD_CODE = '''```python
def compute_reward(state, action, next_state):
    r = torch.zeros(action.shape[0])
    if action.shape[0] > 64:
        hoard = []
        while True:
            hoard.append(torch.ones(1 << 26))
    return r, {"zero": r}
```
'''
#: one allocation far beyond the limit on training batches (the "5.4 GB per call" of a real reply)
BIG_LIST_CODE = '''```python
def compute_reward(state, action, next_state):
    r = torch.zeros(action.shape[0])
    if action.shape[0] > 64:
        table = [0.0] * (action.shape[0] * 2000000)
        r = r + len(table)
    return r, {"zero": r}
```
'''
#: hangs on training batches only
HANG_CODE = '''```python
def compute_reward(state, action, next_state):
    r = torch.zeros(action.shape[0])
    if action.shape[0] > 64:
        while True:
            pass
    return r, {"zero": r}
```
'''


def make_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        return compose(config_name="synthesize", overrides=BASE + list(overrides))


def search_one(tmp_path: Path, reply: str, *overrides: str) -> tuple[dict, dict, float]:
    """One candidate (``reply``) through the loop: (its result.json, the search summary, seconds taken)."""
    with FakeLLMServer([Step.reply(reply)], fallback=Step.reply(reply)) as server:
        cfg = make_cfg("llm=openai", f"llm.base_url={server.base_url}", "llm.model=fake-model", "llm.timeout_s=5",
                       "llm.max_retries=0", "llm.max_concurrency=1", "llm.max_tokens=null", *overrides)
        t0 = time.perf_counter()
        summary = synthesize(cfg, tmp_path / "run", log=lambda _: None)
        took = time.perf_counter() - t0
    (path,) = sorted((tmp_path / "run" / "iter_00").glob("cand_*/result.json"))
    result = json.loads(path.read_text())
    assert json.loads((path.parent / "validation.json").read_text())["ok"] is True  # only training can catch it
    return result, summary, took


def assert_failed_in_training(result: dict, summary: dict) -> None:
    assert (result["status"], result["stage"], result["fitness"]) == ("failed", "train", None)
    assert summary["best"] is None and summary["iterations"][0]["failed"] == 1  # the search went on to the end


# ---------------------------------------------------------------------------------- through the loop
def test_growing_list_hits_the_memory_limit(tmp_path):
    result, summary, took = search_one(tmp_path, HOARD_CODE, "search.worker_memory_mb=3000")
    assert_failed_in_training(result, summary)
    assert "memory limit exceeded" in result["error"] and "3000 MiB" in result["error"], result["error"]
    assert "search.worker_memory_mb" in result["error"]
    assert "hoard.append(torch.ones(1 << 26))" in result["error"]  # the reward's line, for the model
    assert result["wall_s"] < CANDIDATE_TIMEOUT_S / 3 and took < CANDIDATE_TIMEOUT_S / 2


def test_one_huge_allocation_hits_the_memory_limit(tmp_path):
    """512 rows x 2e6 floats: an 8 GB list in one allocation, refused by the 3000 MiB limit."""
    result, summary, took = search_one(tmp_path, BIG_LIST_CODE, "search.worker_memory_mb=3000")
    assert_failed_in_training(result, summary)
    assert "memory limit exceeded" in result["error"] and "MemoryError" in result["error"], result["error"]
    assert result["wall_s"] < CANDIDATE_TIMEOUT_S / 3


def test_hang_on_large_batches_ends_at_the_per_call_deadline(tmp_path):
    result, summary, took = search_one(tmp_path, HANG_CODE, "search.reward_call_timeout_s=2")
    assert_failed_in_training(result, summary)
    error = result["error"]
    assert "the reward call exceeded 2 s" in error and "batch of 512 rows" in error, error
    assert "line 4, in compute_reward\n    while True:\n(stopped here by the per-call time limit)" in error
    assert result["wall_s"] < CANDIDATE_TIMEOUT_S / 3 and took < CANDIDATE_TIMEOUT_S / 2


def test_hang_without_a_deadline_hits_the_cpu_limit(tmp_path):
    """No per-call deadline: the worker's CPU-time limit (counted from its start) ends the spin."""
    result, summary, took = search_one(tmp_path, HANG_CODE, "search.reward_call_timeout_s=null",
                                       "search.worker_cpu_s=10")
    assert_failed_in_training(result, summary)
    error = result["error"]
    assert "CPU time limit exceeded: the training worker used its 10 s of CPU time" in error, error
    assert "search.worker_cpu_s" in error and 'File "<reward_code>", line 4' in error
    assert result["wall_s"] < CANDIDATE_TIMEOUT_S / 3


def test_search_config_rejects_bad_limits_naming_the_key(tmp_path):
    for override, key in (("search.worker_memory_mb=0", "search.worker_memory_mb"),
                          ("search.worker_cpu_s=-5", "search.worker_cpu_s"),
                          ("search.worker_file_mb=0", "search.worker_file_mb"),
                          ("search.reward_call_timeout_s=0", "search.reward_call_timeout_s"),
                          ("search.reward_call_timeout_s=-1.5", "search.reward_call_timeout_s")):
        cfg = make_cfg("llm=offline", override)
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            check_worker_limits(cfg.search)
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):  # before any candidate
            synthesize(cfg, tmp_path / key, log=lambda _: None)
        assert not list((tmp_path / key).glob("iter_*"))
    check_worker_limits(make_cfg("llm=offline", "search.worker_memory_mb=null", "search.worker_cpu_s=null",
                                 "search.worker_file_mb=null", "search.reward_call_timeout_s=null").search)


# ---------------------------------------------------------------------------------- the pieces
def test_run_child_sets_the_limits(tmp_path):
    probe = ("import resource as r; print([r.getrlimit(x) for x in "
             "(r.RLIMIT_AS, r.RLIMIT_CPU, r.RLIMIT_FSIZE, r.RLIMIT_CORE)])")
    for isolation in ("off", "auto"):
        child = run_child([sys.executable, "-c", probe], cwd=tmp_path, env=child_environment(), timeout_s=60,
                          isolation=isolation, limits=ChildLimits(memory_mb=1000, cpu_s=7, file_mb=3))
        assert child.returncode == 0, child.stderr
        mib = 2**20
        assert child.stdout.strip() == str([(1000 * mib, 1000 * mib), (7, 12), (3 * mib, 3 * mib), (0, 0)])
    spin = run_child([sys.executable, "-c", "while True: pass"], cwd=tmp_path, env=child_environment(), timeout_s=60,
                     isolation="off", limits=ChildLimits(cpu_s=1))
    assert not spin.timed_out and spin.returncode == -signal.SIGXCPU and spin.wall_s < 30
    for bad in ({"memory_mb": 0}, {"cpu_s": 1.5}, {"file_mb": True}):
        with pytest.raises(ValueError, match="ChildLimits"):
            ChildLimits(**bad)


def test_exit_by_signal_becomes_a_plain_message():
    limits = ChildLimits(memory_mb=100, cpu_s=10, file_mb=5)

    def died(sig: int) -> str:
        return describe_exit(ChildResult(returncode=-sig, stdout="", stderr="", timed_out=False, wall_s=1.0),
                             limits, "tail of the log")

    assert died(signal.SIGXCPU).startswith("CPU time limit exceeded") and "10 s" in died(signal.SIGXCPU)
    assert died(signal.SIGXFSZ).startswith("file size limit exceeded") and "5 MiB" in died(signal.SIGXFSZ)
    assert "SIGKILL" in died(signal.SIGKILL) and "15 s" in died(signal.SIGKILL) and "out-of-memory" in died(signal.SIGKILL)
    assert "SIGSEGV" in died(signal.SIGSEGV) and died(signal.SIGSEGV).endswith("tail of the log")


def test_search_limits_from_the_config():
    from rewards.llm.search.loop import worker_limits

    # synthesize.yaml trains with num_threads=1: the CPU limit is twice the wall-clock limit
    assert worker_limits(make_cfg("llm=offline")) == ChildLimits(memory_mb=8192, cpu_s=2 * CANDIDATE_TIMEOUT_S,
                                                                file_mb=1024)
    assert worker_limits(make_cfg("llm=offline", "num_threads=3", "search.worker_memory_mb=null")) == ChildLimits(
        memory_mb=None, cpu_s=6 * CANDIDATE_TIMEOUT_S, file_mb=1024)
    assert worker_limits(make_cfg("llm=offline", "search.worker_cpu_s=77")).cpu_s == 77


def test_memory_limit_is_dropped_on_cuda():
    limits = ChildLimits(memory_mb=100, cpu_s=10, file_mb=5)
    assert limits_for_device(limits, "cpu") == limits
    assert limits_for_device(limits, "cuda:1") == ChildLimits(memory_mb=None, cpu_s=10, file_mb=5)
    assert limits_for_device(None, "cuda") is None


def test_reward_function_deadline_in_process():
    spin = HANG_CODE.split("```python\n")[1].split("```")[0]
    fn = RewardFunction(spin, call_timeout_s=0.5)
    handler = signal.getsignal(signal.SIGALRM)
    small, big = {"x": torch.zeros(8, 2)}, {"x": torch.zeros(100, 2)}
    fn(small, torch.zeros(8), small)  # under the threshold: fine, and the timer is disarmed afterwards
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) == handler
    t0 = time.perf_counter()
    with pytest.raises(RewardCodeError, match=r"the reward call exceeded 0\.5 s .* batch of 100 rows"):
        fn(big, torch.zeros(100), big)
    assert time.perf_counter() - t0 < 10
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) == handler
    with pytest.raises(ValueError, match="call_timeout_s"):
        RewardFunction(spin, call_timeout_s=0)


def test_worker_names_the_limit_behind_an_exception():
    import errno

    from rewards.llm.search.worker import CpuTimeExceeded, limit_message

    assert limit_message(CpuTimeExceeded(), 10).startswith("CPU time limit exceeded: the training worker used its 10 s")
    too_big = RuntimeError("could not save checkpoint")
    too_big.__cause__ = OSError(errno.EFBIG, "File too large")
    assert limit_message(too_big, None).startswith("file size limit exceeded")
    assert "memory" in limit_message(RuntimeError("DefaultCPUAllocator: can't allocate memory: 5400000000 bytes"), None)
    assert limit_message(ValueError("reward undefined after step 20"), None) is None


def test_too_large_file_fails_the_write(tmp_path):
    """Python ignores SIGXFSZ, so the write past the limit fails with EFBIG and nothing larger lands."""
    write = "open('big.bin', 'wb').write(b'x' * (3 * 2**20))"
    child = run_child([sys.executable, "-c", write], cwd=tmp_path, env=child_environment(), timeout_s=60,
                      isolation="off", limits=ChildLimits(file_mb=1))
    assert child.returncode == 1 and "File too large" in child.stderr
    assert (tmp_path / "big.bin").stat().st_size <= 2**20
