"""The reward-code sandbox's figures (docs/llm_sandbox.md), measured in one run:

* ``corpus``: how many programs of ``tests/llm_corpus/accept/`` the AST policy and the validation
  child accept (run it with ``PYTHONPATH=<an older tree>`` to count that tree's sandbox);
* ``isolation``: the wall-clock time of one validation with OS isolation (bubblewrap) and without,
  alternating, medians;
* ``copy``: the cost of copying a reward's inputs (``copy_inputs``) for one ``[128 * 1024]``
  DoorKey-8x8 rollout, median of repeats.

The machine's load (``uptime``) is printed before and after.

    python benchmarks/bench_sandbox.py --repeats 6
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import subprocess
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CORPUS = sorted((ROOT / "tests" / "llm_corpus" / "accept").glob("*.py"))
PROGRAM = ("def compute_reward(state, action, next_state):\n"
           "    r = (next_state['agent_pos'] == state['agent_pos']).all(-1).float() * -0.01\n"
           "    return r, {'stay': r}\n")


def corpus(env) -> None:
    from rewards.llm.sandbox import RewardCodeError, sample_states, validate_in_subprocess

    sample = sample_states(env, num_steps=6, seed=1)
    accepted = 0
    for path in CORPUS:
        try:
            report = validate_in_subprocess(path.read_text(), sample, timeout_s=60, raise_on_error=True)
            accepted += bool(report.ok)
        except RewardCodeError as exc:
            print(f"  refused {path.name}: {exc.reason.splitlines()[0][:100]}")
    print(f"corpus: {accepted} of {len(CORPUS)} accepted")


def isolation(env, repeats: int) -> None:
    from rewards.llm.sandbox import sample_states, validate_in_subprocess

    if "isolation" not in inspect.signature(validate_in_subprocess).parameters:
        print("isolation: this tree's sandbox has no isolation modes")
        return
    sample = sample_states(env, num_steps=8, seed=0)
    times: dict[str, list[float]] = {"bwrap": [], "off": []}
    for r in range(repeats):
        for mode in (("bwrap", "off") if r % 2 == 0 else ("off", "bwrap")):
            t0 = time.perf_counter()
            report = validate_in_subprocess(PROGRAM, sample, timeout_s=60, isolation=mode)
            assert report.ok, report.error
            times[mode].append(time.perf_counter() - t0)
    print(f"isolation: one validation takes {statistics.median(times['bwrap']):.2f} s isolated, "
          f"{statistics.median(times['off']):.2f} s without (medians of {repeats})")


def copy_cost(repeats: int) -> None:
    import envs.minigrid as mg
    from rewards.llm.sandbox import copy_inputs

    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=1024, seed=0)
    env.reset(seed=0)
    state = {k: v.unsqueeze(0).expand(128, *v.shape).contiguous() for k, v in env.get_state().items()}
    action = torch.zeros(128, 1024, dtype=torch.int64)
    mib = (sum(v.numel() * v.element_size() for v in state.values()) * 2 + action.numel() * 8) / 2**20
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        copy_inputs(state, action, state)
        times.append(time.perf_counter() - t0)
    print(f"copy: {statistics.median(times) * 1000:.1f} ms to copy one [128 x 1024] rollout's inputs "
          f"({mib:.1f} MiB, torch threads {torch.get_num_threads()}, median of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--only", choices=("corpus", "isolation", "copy"), default=None)
    args = parser.parse_args()
    import envs.minigrid as mg

    print("load before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    env = mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=16, seed=0)
    if args.only in (None, "corpus"):
        corpus(env)
    if args.only in (None, "isolation"):
        isolation(env, args.repeats)
    if args.only in (None, "copy"):
        copy_cost(args.repeats)
    print("load after: ", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
