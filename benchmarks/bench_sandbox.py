"""The reward-code sandbox's figures (docs/llm_sandbox.md), measured in one run:

* ``corpus``: how many programs of ``tests/llm_corpus/accept/`` the AST policy and the validation
  child accept (run it with ``PYTHONPATH=<an older tree>`` to count that tree's sandbox);
* ``isolation``: the wall-clock time of one validation with OS isolation (bubblewrap) and without,
  alternating, medians;
* ``copy``: the cost of copying a reward's inputs (``copy_inputs``) for one ``[128 * 1024]``
  DoorKey-8x8 rollout, median of repeats;
* ``hostile``: how many snippets of ``tests/llm_corpus/hostile/`` are refused by the AST policy,
  contained (the validation child reports not ok, or sanitises every component name for ``# run:
  names``; for ``# run: batch``, a ``RewardFunction`` call on a 128-row batch leaves the caller's
  tensors unchanged) or got through, and which differ from their ``# expect:`` header (the same
  classification as ``tests/test_llm_hostile_corpus.py``, with the default limits);
* ``legit``: how many programs of ``tests/llm_corpus/legit/`` pass the policy and validation on their
  ``# env:`` (MuJoCo ones need ``mujoco``), and the median validation time;
* ``offline``: how many programs of the offline proposer (each term alone, and all terms together,
  on seven MiniGrid and MuJoCo envs) pass the AST policy.

The machine's load (``uptime``) is printed before and after.

    python benchmarks/bench_sandbox.py --repeats 6
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import re
import statistics
import subprocess
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CORPUS = sorted((ROOT / "tests" / "llm_corpus" / "accept").glob("*.py"))
HOSTILE = sorted((ROOT / "tests" / "llm_corpus" / "hostile").glob("*.py"))
LEGIT = sorted((ROOT / "tests" / "llm_corpus" / "legit").glob("*.py"))
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


def headers(path: Path) -> dict[str, str]:
    """The ``# key: value`` lines at the top of a corpus file."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"# (\w+): (.+)", line)
        if not m:
            break
        out[m.group(1)] = m.group(2).strip()
    return out


def hostile_outcome(code: str, run: str, sample: dict, batch: dict) -> str:
    """``refused``, ``contained`` or ``through`` (see the module docstring)."""
    from rewards.llm.sandbox import RewardCodeError, RewardFunction, check_code, validate_in_subprocess

    try:
        check_code(code)
    except RewardCodeError:
        return "refused"
    if run == "batch":
        tensors = [*batch["state"].values(), batch["action"], *batch["next_state"].values()]
        before = [t.clone() for t in tensors]
        try:
            RewardFunction(code)(batch["state"], batch["action"], batch["next_state"])
        except RewardCodeError:
            pass
        return "contained" if all(map(torch.equal, before, tensors)) else "through"
    report = validate_in_subprocess(code, sample, timeout_s=60)
    safe = all(re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", n) for n in report.component_names)
    return "contained" if not report.ok or (run == "names" and safe) else "through"


def hostile(env) -> None:
    import envs.minigrid as mg
    from rewards.llm.sandbox import sample_states

    sample = sample_states(env, num_steps=6, seed=1)
    batch = sample_states(mg.make("MiniGrid-DoorKey-8x8-v0", num_envs=128, seed=0), num_steps=6, seed=1)
    counts = dict.fromkeys(("refused", "contained", "through"), 0)
    t0 = time.perf_counter()
    for path in HOSTILE:
        h = headers(path)
        outcome = hostile_outcome(path.read_text(), h.get("run", "child"), sample, batch)
        counts[outcome] += 1
        if outcome != h.get("expect"):
            print(f"  {path.stem}: expected {h.get('expect')}, today {outcome}")
    print(f"hostile: {counts['refused']} refused, {counts['contained']} contained, {counts['through']} got through, "
          f"of {len(HOSTILE)} tried ({time.perf_counter() - t0:.0f} s)")


def make_env(env_id: str, num_envs: int):
    """The library's batched MiniGrid env, or a gymnasium (MuJoCo) env through the adapter; ``None``
    for a MuJoCo id when ``mujoco`` is not installed."""
    import envs.minigrid as mg

    if env_id.startswith("MiniGrid-"):
        return mg.make(env_id, num_envs=num_envs, seed=0)
    if importlib.util.find_spec("mujoco") is None:
        return None
    from rlcore.adapters.gymnasium import make_gym_env

    return make_gym_env(env_id, num_envs=num_envs, seed=0, vectorization="sync")


def legit() -> None:
    from rewards.llm.sandbox import RewardCodeError, sample_states, validate_in_subprocess

    has_mujoco = importlib.util.find_spec("mujoco") is not None
    passed, tried, times = 0, 0, []
    for path in LEGIT:
        env_id = headers(path)["env"]
        env = make_env(env_id, num_envs=8 if env_id.startswith("MiniGrid-") else 4)
        if env is None:
            continue
        tried += 1
        t0 = time.perf_counter()
        try:
            report = validate_in_subprocess(path.read_text(), sample_states(env, num_steps=6, seed=1), timeout_s=60,
                                            raise_on_error=True)
            passed += bool(report.ok)
        except RewardCodeError as exc:
            print(f"  refused {path.name} on {env_id}: {exc.reason.splitlines()[-1][:120]}")
        times.append(time.perf_counter() - t0)
    print(f"legit: {passed} of {tried} pass the policy and validation on their env "
          f"(median {statistics.median(times):.2f} s per validation)"
          + ("" if has_mujoco else f"; {len(LEGIT) - tried} MuJoCo programs skipped (no mujoco)"))


OFFLINE_ENVS = ("MiniGrid-DoorKey-8x8-v0", "MiniGrid-KeyCorridorS3R1-v0", "MiniGrid-LavaGapS7-v0",
                "MiniGrid-FourRooms-v0", "HalfCheetah-v5", "Hopper-v5", "Ant-v5")


def offline() -> None:
    from rewards.llm.context import describe_env
    from rewards.llm.sandbox import RewardCodeError, check_code
    from rewards.llm.search.offline.program import Program, candidate_terms, render_program

    passed = tried = 0
    for env_id in OFFLINE_ENVS:
        env = make_env(env_id, num_envs=4 if env_id.startswith("MiniGrid-") else 2)
        if env is None:
            continue
        ctx = describe_env(env, env_id)
        terms = candidate_terms(ctx)
        for program in [Program({name: 1.0}) for name in terms] + [Program({name: 1.0 for name in terms})]:
            tried += 1
            try:
                check_code(render_program(ctx, program))
                passed += 1
            except RewardCodeError as exc:
                print(f"  refused on {env_id} ({', '.join(program.terms)}): {exc.reason.splitlines()[-1][:120]}")
    print(f"offline: {passed} of {tried} offline-proposer programs pass the policy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--only", choices=("corpus", "isolation", "copy", "hostile", "legit", "offline"), default=None)
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
    if args.only in (None, "hostile"):
        hostile(env)
    if args.only in (None, "legit"):
        legit()
    if args.only in (None, "offline"):
        offline()
    print("load after: ", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
