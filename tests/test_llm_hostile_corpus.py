"""Regression corpus for the reward-code sandbox: hostile snippets must be refused or contained, and
legitimate reward programs must pass.

``tests/llm_corpus/hostile/NNN_name.py``: each a complete DoorKey reward module whose only hostile part
decides the outcome, with a header::

    # expect: refused | contained
    # attack: one line
    # run: child | names | batch        (optional; child by default)

* ``refused``: :func:`check_code` (the AST policy) rejects it; nothing runs.
* ``contained``: it passes the policy, and

  * ``child``: the validation child reports ``ok=False`` (CPU/memory limit, exception, bad output,
    too many components, an input modified);
  * ``names``: the validation child reports ``ok=False``, or every component name it reports is
    sanitised (``[A-Za-z0-9_.-]``, at most 64 characters): the prompt-injection text never reaches
    a log or the next prompt;
  * ``batch``: the attack triggers only on large batches, which the validation sample is not, so it is
    run in-process by :class:`RewardFunction` on a 128-row batch: the caller's tensors must come out
    unchanged (raising :class:`RewardCodeError` is fine).

  Anything else is ``through``.

``tests/llm_corpus/legit/NN_name.py`` (header ``# env: <id>``): reward programs a researcher or a model
would write for MiniGrid and MuJoCo; each must pass the policy and the validation child on its env and
return finite float32 rewards of shape ``[N]``.

The policy check and the batch runs are fast and run in the default suite; the ~25 child validations
of the hostile corpus (about 2-3 s each) are ``slow``: ``pytest -m slow tests/test_llm_hostile_corpus.py -s``.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import pytest
import torch

import envs.minigrid as mg
from rewards.llm.sandbox import RewardCodeError, RewardFunction, check_code, sample_states, validate_in_subprocess

CORPUS = Path(__file__).parent / "llm_corpus"
HOSTILE = sorted((CORPUS / "hostile").glob("*.py"))
LEGIT = sorted((CORPUS / "legit").glob("*.py"))
DOORKEY = "MiniGrid-DoorKey-8x8-v0"
#: how many snippets expect each outcome (a deleted or re-labelled snippet shows up here)
EXPECTED = {"refused": 88, "contained": 22}
#: the endless loops only need to hit *a* CPU limit: 2 s instead of the default 10 keeps the test short
CPU_SECONDS = 2
SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def headers(path: Path) -> dict[str, str]:
    """The ``# key: value`` lines at the top of a corpus file."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.fullmatch(r"# (\w+): (.+)", line)
        if not m:
            break
        out[m.group(1)] = m.group(2).strip()
    return out


def refused(code: str) -> bool:
    try:
        check_code(code)
    except RewardCodeError:
        return True
    return False


def batch_outcome(code: str, batch: dict) -> str:
    """``contained`` when a ``RewardFunction`` call on ``batch`` leaves the caller's tensors unchanged."""
    tensors = [*batch["state"].values(), batch["action"], *batch["next_state"].values()]
    before = [t.clone() for t in tensors]
    try:
        RewardFunction(code)(batch["state"], batch["action"], batch["next_state"])
    except RewardCodeError:
        pass
    return "contained" if all(torch.equal(a, b) for a, b in zip(before, tensors)) else "through"


def child_outcome(code: str, run: str, sample: dict) -> tuple[str, str]:
    report = validate_in_subprocess(code, sample, cpu_seconds=CPU_SECONDS)
    if not report.ok:
        lines = report.error.splitlines()
        return "contained", lines[0] + (f" ... {lines[-1]}" if len(lines) > 1 else "")
    if run == "names" and all(SAFE_NAME.fullmatch(n) for n in report.component_names):
        return "contained", f"names sanitised: {report.component_names}"
    return "through", "validation passed"


def _without_child(h: dict[str, str]) -> str:
    """What the policy check and the batch run alone should say about a snippet with headers ``h``."""
    if h["expect"] == "refused":
        return "refused"
    return "contained" if h.get("run") == "batch" else "passes the policy"


@pytest.fixture(scope="module")
def big_batch():
    return sample_states(mg.make(DOORKEY, num_envs=128, seed=0), num_steps=6, seed=1)


def test_hostile_corpus_is_refused_by_the_policy_or_contained_on_large_batches(big_batch):
    assert len(HOSTILE) == sum(EXPECTED.values()) == 110
    expect = {p.stem: headers(p) for p in HOSTILE}
    assert all(re.fullmatch(r"\d{3}_[a-z0-9_]+", name) for name in expect)
    assert all(h.get("expect") in EXPECTED and h.get("attack") and h.get("run", "child") in ("child", "names", "batch")
               for h in expect.values()), "every snippet needs '# expect:' and '# attack:' headers"
    assert Counter(h["expect"] for h in expect.values()) == EXPECTED
    outcome: dict[str, str] = {}
    for path in HOSTILE:
        code, h = path.read_text(), expect[path.stem]
        if refused(code):
            outcome[path.stem] = "refused"
        elif h.get("run") == "batch":
            outcome[path.stem] = batch_outcome(code, big_batch)
        else:
            outcome[path.stem] = "passes the policy"
    wrong = {n: o for n, o in outcome.items() if o != _without_child(expect[n])}
    assert not wrong, f"snippets with an unexpected outcome: {wrong}"
    counts = Counter(outcome.values())
    print(f"\nhostile corpus, policy and batch runs: {counts['refused']} refused, {counts['contained']} contained "
          f"on a 128-row batch, {counts['passes the policy']} left for the validation child, of {len(HOSTILE)}")
    assert counts["refused"] == EXPECTED["refused"]


@pytest.mark.slow
def test_hostile_corpus_is_contained_by_the_validation_child(big_batch):
    sample = sample_states(mg.make(DOORKEY, num_envs=16, seed=0), num_steps=6, seed=1)
    outcome: dict[str, str] = {}
    details: dict[str, str] = {}
    for path in HOSTILE:
        code, h = path.read_text(), headers(path)
        if refused(code):
            outcome[path.stem] = "refused"
        elif h.get("run") == "batch":
            outcome[path.stem] = batch_outcome(code, big_batch)
        else:
            outcome[path.stem], details[path.stem] = child_outcome(code, h.get("run", "child"), sample)
    differ = {p.stem: outcome[p.stem] for p in HOSTILE if outcome[p.stem] != headers(p)["expect"]}
    counts = Counter(outcome.values())
    print(f"\nhostile corpus: {counts['refused']} refused, {counts['contained']} contained, {counts['through']} got "
          f"through, of {len(HOSTILE)} tried ({len(details)} validation children)")
    for name, detail in details.items():
        note = f"expected {headers(CORPUS / 'hostile' / f'{name}.py')['expect']}, today {outcome[name]}" \
            if name in differ else outcome[name]
        print(f"  {name}: {note}: {detail[:160]}")
    assert not differ, {n: (o, details.get(n)) for n, o in differ.items()}
    assert counts["refused"] == EXPECTED["refused"] and counts["contained"] == EXPECTED["contained"]
    assert len(details) <= 25


def _make_env(env_id: str):
    if env_id.startswith("MiniGrid-"):
        return mg.make(env_id, num_envs=8, seed=0)
    from rlcore.adapters.gymnasium import make_gym_env

    return make_gym_env(env_id, num_envs=4, seed=0, vectorization="sync")


def test_legit_corpus_passes_the_policy_and_validation_on_its_env():
    assert len(LEGIT) == 10
    env_ids = [headers(p)["env"] for p in LEGIT]
    assert sum(e.startswith("MiniGrid-") for e in env_ids) == 6
    has_mujoco = importlib.util.find_spec("mujoco") is not None
    passed = 0
    for path, env_id in zip(LEGIT, env_ids):
        if not env_id.startswith("MiniGrid-") and not has_mujoco:
            continue
        code = path.read_text()
        check_code(code)
        env = _make_env(env_id)
        sample = sample_states(env, num_steps=6, seed=1)
        report = validate_in_subprocess(code, sample)
        assert report.ok, f"{path.name} on {env_id}: {report.error}"
        reward, components = RewardFunction(code, validation=report)(sample["state"], sample["action"], sample["next_state"])
        assert reward.dtype == torch.float32 and reward.shape == (env.num_envs,), path.name
        assert bool(torch.isfinite(reward).all()) and list(components) == report.component_names, path.name
        if hasattr(env, "close"):
            env.close()
        passed += 1
    print(f"\nlegit corpus: {passed} of {len(LEGIT)} pass the policy and validation" + ("" if has_mujoco else
          " (MuJoCo programs skipped: mujoco is not installed)"))
    assert passed == (len(LEGIT) if has_mujoco else 6)
