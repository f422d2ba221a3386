"""The reward search loop (``rewards.llm.search.synthesize``) end to end, on tiny training budgets.

Every candidate trains in a worker process that imports torch, so the searches here are as small as
they can be and are shared through module-scoped fixtures: one offline search (artifacts, final
comparison, resume) and one search against the scripted chat server (failure accounting, usage,
transcript, error text in the next request, feedback, replay). Candidates whose reply fails before
training cost no worker, so the scripts use them freely.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
import torch
from omegaconf import DictConfig

from llm_fake_server import HOSTILE_CODE, NO_CODE_REPLY, SYNTAX_ERROR_CODE, VALID_CODE, FakeLLMServer, Step
from rewards.llm.search.synthesize import synthesize

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-loop-test-secret-7d2e91"
FEEDBACK = "The agent spins in place next to the goal; reward stepping onto it more clearly."

#: tiny training budget shared by every search here
BASE = [
    "env.id=MiniGrid-Empty-5x5-v0", "env.num_envs=8", "total_timesteps=2048", "eval.every_timesteps=1024",
    "eval.num_episodes=8", "algo.params.n_steps=64", "search.reeval_seeds=1", "search.baselines=false",
    "search.workers=2", "seed=0",
]

#: a second valid reward (a different program from VALID_CODE)
VALID_CODE_2 = '''A variant with a stronger goal bonus.

```python
def compute_reward(state, action, next_state):
    d = (next_state["agent_pos"] - next_state["goal_pos"]).abs().sum(-1).float()
    near = -0.05 * d
    goal = 2.0 * (d == 0).float()
    return goal + near, {"goal": goal, "near": near}
```
'''

#: passes validation (8 random steps from a reset) and fails once an episode is past step 20
LATE_CRASH_CODE = '''```python
def compute_reward(state, action, next_state):
    if bool((next_state["step_count"] > 20).any()):
        raise ValueError("reward undefined after step 20")
    r = torch.zeros(action.shape[0])
    return r, {"zero": r}
```
'''


def make_cfg(*overrides: str) -> DictConfig:
    """The search config as the CLI composes it, with the tiny budget plus ``overrides``."""
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base=None):
        return compose(config_name="synthesize", overrides=BASE + list(overrides))


def openai_overrides(server: FakeLLMServer) -> list[str]:
    """The chat proposer on the fake server: one request at a time (the script is played in order)."""
    return ["llm=openai", f"llm.base_url={server.base_url}", "llm.model=fake-model", "llm.timeout_s=0.5",
            "llm.max_retries=2", "llm.backoff_s=0.01", "llm.backoff_max_s=0.05", "llm.max_concurrency=1",
            "llm.max_tokens=null"]


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def results(run_dir: Path, it: int) -> list[dict]:
    return [read(p) for p in sorted((run_dir / f"iter_{it:02d}").glob("cand_*/result.json"))]


def requests_of(server_requests: list[dict], it: int, seed: int = 0) -> list[dict]:
    """Requests of iteration ``it`` (the loop seeds them ``seed * 1000 + it * 100 + k``)."""
    return [r for r in server_requests if (int(r["seed"]) - seed * 1000) // 100 == it]


def last_user(request: dict) -> str:
    return [m for m in request["messages"] if m["role"] == "user"][-1]["content"]


def quiet(_: str) -> None:
    pass


# ------------------------------------------------------------------------------------------ offline
#: one iteration of two candidates, then the best reward and both baselines on one fresh seed
OFFLINE = ("llm=offline", "iterations=1", "candidates=2", "search.baselines=true")

@pytest.fixture(scope="module")
def offline_run(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("offline") / "run"
    cfg = make_cfg(*OFFLINE)
    return run_dir, synthesize(cfg, run_dir, log=quiet)


def test_offline_search_writes_every_artifact(offline_run):
    import envs.minigrid as mg
    from rewards.llm.reward_module import CodeReward
    from rewards.llm.sandbox import sample_states
    from rlcore.batch import TransitionBatch

    run_dir, summary = offline_run
    for it in range(1):
        replies = read(run_dir / f"iter_{it:02d}" / "replies.json")
        assert len(replies) == 2 and all("text" in r for r in replies)
        for k, res in enumerate(results(run_dir, it)):
            cand = run_dir / f"iter_{it:02d}" / f"cand_{k:02d}"
            for name in ("reply.md", "code.py", "validation.json", "result.json", "train/progress.csv"):
                assert (cand / name).is_file(), f"missing {cand / name}"
            assert read(cand / "validation.json")["ok"] is True
            assert res["status"] == "ok" and res["stage"] == "done" and res["error"] is None
            assert math.isfinite(res["fitness"]) and 0.0 <= res["fitness"] <= 1.0
            assert res["code"] == (cand / "code.py").read_text()
            # the reflection statistics: success curve and every component the program names
            assert [step for step, _ in res["stats"]["success"]] == [1024, 2048]
            comps = res["stats"]["components"]
            assert comps and set(comps) == set(read(cand / "validation.json")["components"])
            for points in comps.values():
                assert points and all(len(p) == 4 and p[2] <= p[1] <= p[3] for p in points)

    # the best candidate is the one with the highest fitness, the first one on ties
    every = results(run_dir, 0)
    top = max(r["fitness"] for r in every)
    expected = next(r for r in every if r["fitness"] == top)
    assert summary["best"]["name"] == expected["name"]
    best_code = (run_dir / "best_reward.py").read_text()
    assert best_code == expected["code"]
    reward = CodeReward(None, None, code_path=str(run_dir / "best_reward.py"))
    assert reward.code == best_code
    sample = sample_states(mg.make("MiniGrid-Empty-5x5-v0", num_envs=4, seed=0))
    n = sample["action"].shape[0]
    batch = TransitionBatch(obs=torch.zeros(n), action=sample["action"], reward=torch.zeros(n), next_obs=torch.zeros(n),
                            terminated=torch.zeros(n, dtype=torch.bool), truncated=torch.zeros(n, dtype=torch.bool),
                            state=sample["state"], next_state=sample["next_state"])
    r = reward.compute(batch)
    assert r.shape == (n,) and r.dtype == torch.float32 and bool(torch.isfinite(r).all())
    logged = reward.update(batch)
    assert {k.split("/")[1] for k in logged} == set(expected["stats"]["components"])

    # final comparison: best and both baselines on the fresh seed, same budget
    on_disk = read(run_dir / "summary.json")
    assert on_disk["best"] == summary["best"] and on_disk["metric"] == "success"
    arms = on_disk["final"]["arms"]
    assert set(arms) == {"best", "env_reward", "task_metric"} and on_disk["final"]["seeds"] == [1000]
    for arm, data in arms.items():
        assert data["runs_ok"] == 1, (arm, data)
        assert 0.0 <= data["fitness_mean"] <= 1.0
        # the best arm's runs are keyed by a hash of its code (a later, better best is trained afresh)
        tag = f"best-{hashlib.sha256(expected['code'].encode()).hexdigest()[:10]}" if arm == "best" else arm
        assert (run_dir / "final" / f"{tag}_seed1000" / "train" / "progress.csv").is_file()
    assert [e["ok"] for e in on_disk["iterations"]] == [2]

    report = (run_dir / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| 0 |")]
    assert len(table) == 2 and all("| ok |" in line for line in table)
    assert "2 candidates, 0 failed." in report
    assert f"## Best reward: {expected['name']}" in report
    for arm in ("best", "env_reward", "task_metric"):
        assert f"| {arm} | 1 |" in report
    assert "llm_usage" not in on_disk  # the offline search asks no model


def test_resume_trains_only_the_missing_candidates(offline_run, tmp_path):
    from rewards.llm.search.synthesize import synthesize as run_search

    src, first = offline_run
    run_dir = tmp_path / "copy"
    shutil.copytree(src, run_dir)
    cfg = make_cfg(*OFFLINE)

    with pytest.raises(FileExistsError, match=re.escape(str(run_dir))):
        run_search(cfg, run_dir, log=quiet)

    gone = run_dir / "iter_00" / "cand_01"
    (gone / "result.json").unlink()
    (run_dir / "summary.json").unlink()
    kept = [p for p in run_dir.glob("iter_*/cand_*/job.yaml") if p.parent != gone]
    kept += list(run_dir.glob("final/*/job.yaml")) + list(run_dir.glob("iter_*/replies.json"))
    assert len(kept) == 1 + 3 + 1
    before = {p: p.stat().st_mtime_ns for p in kept}
    gone_before = (gone / "job.yaml").stat().st_mtime_ns

    lines: list[str] = []
    summary = run_search(make_cfg(*OFFLINE, "resume=true"), run_dir, log=lines.append)
    assert {p: p.stat().st_mtime_ns for p in kept} == before, "a finished candidate or arm was run again"
    assert (gone / "job.yaml").stat().st_mtime_ns > gone_before
    assert not any("asking" in line for line in lines), "the proposer was asked again for a saved iteration"
    redone = read(gone / "result.json")
    assert redone["status"] == "ok" and redone["fitness"] == read(src / "iter_00" / "cand_01" / "result.json")["fitness"]
    on_disk = read(run_dir / "summary.json")
    assert on_disk["best"]["name"] == first["best"]["name"]
    assert summary["best"] == on_disk["best"] and [e["ok"] for e in on_disk["iterations"]] == [2]
    assert set(on_disk["final"]["arms"]) == {"best", "env_reward", "task_metric"}
    assert "2 candidates, 0 failed." in (run_dir / "report.md").read_text()


def test_training_timeout_is_a_failed_candidate(tmp_path):
    cfg = make_cfg("llm=offline", "iterations=1", "candidates=1", "search.candidate_timeout_s=0.2",
                   "search.reeval_seeds=0")
    summary = synthesize(cfg, tmp_path / "run", log=quiet)
    (res,) = results(tmp_path / "run", 0)
    assert res["status"] == "failed" and res["stage"] == "train" and res["fitness"] is None
    assert "timed out after 0.2 s" in res["error"]
    assert summary["best"] is None and summary["iterations"][0]["failed"] == 1
    assert not (tmp_path / "run" / "best_reward.py").exists()
    assert "train: training timed out" in (tmp_path / "run" / "report.md").read_text()


# ---------------------------------------------------------------------------------- chat model
def chat_script() -> list[Step]:
    """Three iterations of four candidates, one request at a time (see test_chat_search_accounting)."""
    slow = Step.slow(1.5)
    return [
        # iteration 0: one reward trains; the others fail before training
        Step.reply(VALID_CODE), Step.reply(SYNTAX_ERROR_CODE), Step.reply(HOSTILE_CODE), Step.reply(NO_CODE_REPLY),
        # iteration 1
        Step.status_error(429, retry_after="0", message="rate limited"),
        Step.status_error(500, message="internal error"), Step.reply(VALID_CODE_2),  # cand 0: retried twice, ok
        slow, slow, slow,                                                             # cand 1: timeouts, gives up
        Step.reply(LATE_CRASH_CODE),                                                  # cand 2: crashes in training
        Step.reply(NO_CODE_REPLY),                                                    # cand 3
        # iteration 2: the fallback answers (no code): nothing more to train
    ]


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat")
    feedback = root / "feedback.txt"
    feedback.write_text(FEEDBACK + "\n")
    with pytest.MonkeyPatch.context() as mp, FakeLLMServer(chat_script(), fallback=Step.reply(NO_CODE_REPLY)) as server:
        mp.setenv("OPENAI_API_KEY", SECRET)
        search_args = ["iterations=3", "candidates=4", "search.reeval_seeds=0", f"search.feedback={feedback}"]
        cfg = make_cfg(*openai_overrides(server), *search_args)
        summary = synthesize(cfg, root / "run", log=quiet)
        requests, headers = list(server.requests), list(server.headers)
    return {"run_dir": root / "run", "summary": summary, "requests": requests, "headers": headers,
            "search_args": search_args}


def test_chat_search_accounting(chat_run):
    run_dir = chat_run["run_dir"]
    it0, it1, it2 = (results(run_dir, it) for it in range(3))
    stages = [[(r["status"], r["stage"]) for r in rs] for rs in (it0, it1, it2)]
    assert stages[0] == [("ok", "done"), ("failed", "validate"), ("failed", "validate"), ("failed", "extract")]
    assert stages[1] == [("ok", "done"), ("failed", "request"), ("failed", "train"), ("failed", "extract")]
    assert stages[2] == [("failed", "extract")] * 4

    assert "syntax error at line 1" in it0[1]["error"]
    assert "refused by the sandbox policy" in it0[2]["error"] and "import of 'os'" in it0[2]["error"]
    assert read(run_dir / "iter_00" / "cand_02" / "validation.json")["ok"] is False
    assert not (run_dir / "iter_00" / "cand_02" / "train").exists()
    assert "no fenced python code block" in it0[3]["error"] and not (run_dir / "iter_00" / "cand_03" / "code.py").exists()
    assert "LLMRequestError" in it1[1]["error"] and "timeout" in it1[1]["error"] and it1[1]["code"] is None
    assert "reward undefined after step 20" in it1[2]["error"] and "Traceback" in it1[2]["error"]
    for r in it0[1:] + it1[1:] + it2:
        assert r["fitness"] is None
    replies = read(run_dir / "iter_01" / "replies.json")
    assert "error" in replies[1] and "text" in replies[0]

    # usage: 12 logical requests; 429 + 500 then success (2 retries), 3 timeouts (2 retries, 1 failure)
    usage = read(run_dir / "summary.json")["llm_usage"]
    assert usage["requests"] == 12 and usage["retries"] == 4 and usage["failures"] == 1
    assert len(chat_run["requests"]) == 12 + 4
    summary = read(run_dir / "summary.json")
    assert [(e["ok"], e["failed"]) for e in summary["iterations"]] == [(1, 3), (1, 3), (0, 4)]
    assert summary["best"]["name"] in ("iter00_cand00", "iter01_cand00")
    report = (run_dir / "report.md").read_text()
    assert "12 candidates, 10 failed." in report and "| 1 | 2 | failed |" in report


def test_chat_search_keeps_the_key_out_of_files(chat_run):
    run_dir = chat_run["run_dir"]
    assert all(h.get("authorization") == f"Bearer {SECRET}" for h in chat_run["headers"])  # the key was used
    transcript = run_dir / "transcript.jsonl"
    lines = transcript.read_text().splitlines()
    assert len(lines) == 12
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in (".jsonl", ".json", ".yaml", ".md", ".log", ".py", ".txt", ".csv"):
            assert SECRET not in path.read_text(errors="replace"), f"the API key leaked into {path}"


def test_failed_candidates_error_text_reaches_the_model(chat_run):
    run_dir, requests = chat_run["run_dir"], chat_run["requests"]
    it1 = requests_of(requests, 1)
    assert len(it1) == 4 + 4  # 4 candidates + 2 retries (429, 500) + 2 retries (timeouts)
    assert len({json.dumps(r["messages"]) for r in it1}) == 1  # one conversation, K seeds
    text = last_user(it1[0])
    # every failure of iteration 0, with its stage and full error text
    assert "syntax error at line 1, column 46: expected ':'" in text
    assert "import of 'os' is not allowed" in text and "the name 'open' is not allowed" in text
    assert "Candidate 3 of the last iteration failed at the extract stage" in text
    assert "no fenced python code block" in text
    assert "Candidate 0 of the last iteration failed" not in text
    # the reflection on the best reward and the person's feedback
    assert "success rate:" in text and FEEDBACK in text
    assert [m["role"] for m in it1[0]["messages"]] == ["system", "user", "assistant", "user"]
    assert "def compute_reward" in it1[0]["messages"][2]["content"]
    # iteration 2 hears of the request timeout and of the training crash, traceback included
    text2 = last_user(requests_of(requests, 2)[0])
    assert "Candidate 1 of the last iteration failed at the request stage" in text2
    assert "Candidate 2 of the last iteration failed at the train stage" in text2
    assert "reward undefined after step 20" in text2 and "Traceback" in text2
    assert FEEDBACK in text2
    assert (run_dir / "iter_01" / "cand_02" / "code.py").read_text() in text2  # the crashing code is shown


def test_replay_reproduces_the_recorded_search(chat_run, tmp_path):
    src = chat_run["run_dir"]
    cfg = make_cfg("llm=replay", f"llm.transcript={src / 'transcript.jsonl'}", *chat_run["search_args"])
    summary = synthesize(cfg, tmp_path / "replay", log=quiet)
    for it in range(3):
        assert read(tmp_path / "replay" / f"iter_{it:02d}" / "replies.json") == read(src / f"iter_{it:02d}" / "replies.json")
        for a, b in zip(results(src, it), results(tmp_path / "replay", it), strict=True):
            assert (a["code"], a["status"], a["stage"]) == (b["code"], b["status"], b["stage"])
    assert summary["best"]["name"] == chat_run["summary"]["best"]["name"]
    assert summary["llm_usage"]["requests"] == 12 and summary["llm_usage"]["failures"] == 1


# ---------------------------------------------------------------------------------- preference
def preference_run(root: Path, mode: str, **search_kwargs: Any) -> tuple[Path, list[dict], dict]:
    """Two trained candidates in iteration 0, then an iteration whose replies hold no code."""
    feedback = root / "feedback.txt"
    feedback.write_text(FEEDBACK)
    script = [Step.reply(VALID_CODE), Step.reply(VALID_CODE_2)]
    with FakeLLMServer(script, fallback=Step.reply(NO_CODE_REPLY)) as server:
        cfg = make_cfg(*openai_overrides(server), "iterations=2", "candidates=2", "search.reeval_seeds=0",
                       f"search.preference={mode}", f"search.feedback={feedback}")
        summary = synthesize(cfg, root / "run", log=quiet, **search_kwargs)
        return root / "run", list(server.requests), summary


def test_simulated_preference_sends_a_ranking_without_numbers(tmp_path):
    run_dir, requests, summary = preference_run(tmp_path, "simulated")
    it0 = results(run_dir, 0)
    assert [r["status"] for r in it0] == ["ok", "ok"]
    order = sorted(it0, key=lambda r: (-r["fitness"], r["index"]))
    text = last_user(requests_of(requests, 1)[0])
    assert [m["role"] for m in requests_of(requests, 1)[0]["messages"]] == ["system", "user"]
    assert "### Rank 1 (best)" in text and "### Rank 2 (worst)" in text
    rank1, rank2 = text.index("### Rank 1"), text.index("### Rank 2")
    assert text.index(order[0]["code"].strip()) > rank1 and text.index(order[1]["code"].strip()) > rank2
    assert "fitness" not in text.lower() and "success rate:" not in text
    assert FEEDBACK in text
    assert summary["best"]["name"] == order[0]["name"]


def test_terminal_preference_follows_the_teacher(tmp_path):
    seen: list[list[str]] = []

    gifs: list[str | None] = []

    def teacher(candidates: list[dict]) -> list[int]:
        seen.append([c["name"] for c in candidates])
        gifs.extend(c.get("gif") for c in candidates)
        return [1, 0]  # the second candidate is preferred

    run_dir, requests, summary = preference_run(tmp_path, "terminal", teacher=teacher)
    assert seen == [["iter00_cand00", "iter00_cand01"]]
    assert len(gifs) == 2 and all(g and Path(g).is_file() and g.endswith(".gif") for g in gifs), gifs
    it0 = results(run_dir, 0)
    text = last_user(requests_of(requests, 1)[0])
    assert text.index(it0[1]["code"].strip()) < text.index("### Rank 2") < text.index(it0[0]["code"].strip())
    assert summary["best"]["name"] == "iter00_cand01"
    assert (run_dir / "best_reward.py").read_text() == it0[1]["code"]
    assert read(run_dir / "search_state.json")["iterations"][0]["ranking"] == ["iter00_cand01", "iter00_cand00"]

    # a resumed search keeps the ranking the person gave instead of asking again
    def no_teacher(candidates: list[dict]) -> list[int]:
        raise AssertionError("the teacher was asked again on resume")

    (run_dir / "summary.json").unlink()
    with FakeLLMServer([], fallback=Step.status_error(400, message="must not be asked")) as server:
        cfg = make_cfg(*openai_overrides(server), "iterations=2", "candidates=2", "search.reeval_seeds=0",
                       "search.preference=terminal", f"search.feedback={tmp_path / 'feedback.txt'}", "resume=true")
        resumed = synthesize(cfg, run_dir, log=quiet, teacher=no_teacher)
        assert server.request_count == 0
    assert resumed["best"]["name"] == "iter00_cand01"


def test_feedback_without_a_trained_candidate_and_on_resume(tmp_path):
    """Terminal feedback reaches the model although no candidate trained, and is not asked for twice."""
    asked: list[int] = []

    def feedback_fn(it: int, best: dict | None) -> str:
        asked.append(it)
        assert best is None
        return f"{FEEDBACK} (after iteration {it})"

    run_dir = tmp_path / "run"
    args = ["iterations=3", "candidates=2", "search.reeval_seeds=0", "search.feedback=terminal"]
    with FakeLLMServer([], fallback=Step.reply(NO_CODE_REPLY)) as server:
        summary = synthesize(make_cfg(*openai_overrides(server), *args), run_dir, log=quiet, feedback_fn=feedback_fn)
        assert asked == [0, 1]  # not after the last iteration
        for it in (1, 2):
            text = last_user(requests_of(server.requests, it)[0])
            assert f"{FEEDBACK} (after iteration {it - 1})" in text
            assert "Candidate 1 of the last iteration failed at the extract stage" in text
        assert summary["best"] is None and [e["feedback"] for e in summary["iterations"]][:2] == [
            f"{FEEDBACK} (after iteration 0)", f"{FEEDBACK} (after iteration 1)"]

        (run_dir / "summary.json").unlink()
        synthesize(make_cfg(*openai_overrides(server), *args, "resume=true"), run_dir, log=quiet,
                   feedback_fn=feedback_fn)
        assert asked == [0, 1] and server.request_count == 6
    assert read(run_dir / "summary.json")["iterations"] == summary["iterations"]


def test_unreachable_endpoint_fails_every_candidate_at_the_request(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    cfg = make_cfg("llm=openai", f"llm.base_url=http://127.0.0.1:{port}/v1", "llm.model=fake-model",
                   "llm.timeout_s=0.5", "llm.max_retries=1", "llm.backoff_s=0.01", "llm.backoff_max_s=0.02",
                   "llm.preflight=false", "iterations=2", "candidates=2", "search.reeval_seeds=0")
    summary = synthesize(cfg, tmp_path / "run", log=quiet)
    for it in range(2):
        for r in results(tmp_path / "run", it):
            assert (r["status"], r["stage"]) == ("failed", "request") and "connection" in r["error"].lower()
    assert summary["best"] is None
    assert summary["llm_usage"]["requests"] == 4 and summary["llm_usage"]["failures"] == 4
    assert summary["llm_usage"]["retries"] == 4
    assert len((tmp_path / "run" / "transcript.jsonl").read_text().splitlines()) == 4


def test_mujoco_task_runs_through_the_loop(tmp_path):
    """HalfCheetah through the gymnasium adapter: qpos/qvel context, offline programs, return fitness."""
    pytest.importorskip("mujoco")
    cfg = make_cfg("env=mujoco", "env.id=HalfCheetah-v5", "env.num_envs=2", "env.vectorization=sync",
                   "total_timesteps=1024", "eval.every_timesteps=512", "eval.num_episodes=2", "algo.params.n_steps=128",
                   "iterations=1", "candidates=1", "search.reeval_seeds=1", "search.baselines=true")
    summary = synthesize(cfg, tmp_path / "mj")
    assert summary["metric"] == "return" and "qpos" in read(tmp_path / "mj" / "env_context.json")["text"]
    (cand,) = results(tmp_path / "mj", 0)
    assert cand["status"] == "ok" and math.isfinite(cand["fitness"])
    assert "forward_velocity" in cand["stats"]["components"]
    # return fitness: the env-reward baseline only (the task metric is the env return itself)
    assert set(summary["final"]["arms"]) == {"best", "env_reward"}


# ---------------------------------------------------------------------------------- client faults
def test_cut_off_and_malformed_replies_are_failed_candidates(tmp_path):
    truncated = "Here it is.\n\n```python\ndef compute_reward(state, action, next_state):\n    d = (next_state"
    script = [Step.cut_off(), Step.cut_off(truncated), Step.malformed(), Step.malformed(b"{"), Step.malformed(b"[]")]
    with FakeLLMServer(script) as server:
        overrides = [o for o in openai_overrides(server) if not o.startswith("llm.max_tokens")]
        cfg = make_cfg(*overrides, "llm.max_tokens=64", "iterations=1", "candidates=3", "search.reeval_seeds=0")
        summary = synthesize(cfg, tmp_path / "run", log=quiet)
        assert server.models_requests == 1  # the preflight, not counted as a request
    empty, cut, bad = results(tmp_path / "run", 0)
    for r in (empty, cut):
        assert (r["status"], r["stage"]) == ("failed", "extract")
        assert "the reply was cut off at max_tokens=64 (finish_reason=length)" in r["error"]
    assert "no fenced python code block" in empty["error"]
    assert not (tmp_path / "run" / "iter_00" / "cand_01" / "train").exists()
    assert (bad["status"], bad["stage"]) == ("failed", "request")
    assert "malformed after 3 attempt(s)" in bad["error"] and bad["code"] is None
    assert summary["llm_usage"]["requests"] == 3 and summary["llm_usage"]["failures"] == 1
    assert summary["llm_usage"]["retries"] == 2
    saved = read(tmp_path / "run" / "iter_00" / "replies.json")
    assert saved[0]["finish_reason"] == "length" and saved[0]["max_tokens"] == 64
    assert "cut off at max_tokens=64" in (tmp_path / "run" / "report.md").read_text()


def test_no_server_fails_fast_before_any_candidate(tmp_path):
    import time

    from rewards.llm.search.loop import PreflightError

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    cfg = make_cfg("llm=openai", f"llm.base_url={url}", "llm.model=fake-model", "llm.timeout_s=0.5",
                   "llm.max_retries=4", "iterations=3", "candidates=4", "search.reeval_seeds=0")
    lines: list[str] = []
    start = time.monotonic()
    with pytest.raises(PreflightError) as info:
        synthesize(cfg, tmp_path / "run", log=lines.append)
    assert time.monotonic() - start < 5.0
    # short: the message is cut to one line; only the report's path (as long as the machine's tmp dir) is added
    assert len(lines) == 1 and lines[0].startswith("LLM preflight failed: endpoint")
    assert len(lines[0].replace(str(tmp_path), "")) < 220
    report = (tmp_path / "run" / "report.md").read_text()
    assert str(info.value) in report and url in report and "'fake-model'" in report and "cannot connect" in report
    assert not list((tmp_path / "run").glob("iter_*"))
    transcript = tmp_path / "run" / "transcript.jsonl"
    assert not transcript.exists() or transcript.read_text() == ""


def test_preflight_names_a_model_the_server_does_not_serve(tmp_path):
    from rewards.llm.search.loop import PreflightError

    with FakeLLMServer([], model="served-model") as server:
        cfg = make_cfg(*openai_overrides(server), "iterations=1", "candidates=1", "search.reeval_seeds=0")
        with pytest.raises(PreflightError, match="does not serve this model; it serves 'served-model'"):
            synthesize(cfg, tmp_path / "run", log=quiet)
        assert server.request_count == 0


def test_preflight_is_skipped_when_off_and_for_replay(tmp_path):
    from rewards.llm.search.proposers import make_proposer

    cfg = make_cfg("llm=openai", "llm.base_url=http://127.0.0.1:9/v1", "llm.model=m", "llm.preflight=false")
    assert make_proposer(cfg.llm, tmp_path).check_endpoint is False
    assert make_proposer(make_cfg("llm=openai", "llm.model=m").llm, tmp_path).check_endpoint is True
    transcript = tmp_path / "t.jsonl"
    transcript.write_text("")
    replay = make_proposer(make_cfg("llm=replay", f"llm.transcript={transcript}").llm, tmp_path)
    assert replay.check_endpoint is False
    replay.preflight()  # nothing to check
