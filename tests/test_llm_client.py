"""OpenAI-compatible client against a scripted local server; recording and replay."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from llm_fake_server import HOSTILE_CODE, NO_CODE_REPLY, SYNTAX_ERROR_CODE, VALID_CODE, FakeLLMServer, Step, default_script
from rewards.llm.search.client import ChatClient, ChatReply, LLMRequestError, OpenAIChatClient, make_client
from rewards.llm.extract import NoCodeError, extract_code
from rewards.llm.search.transcript import RecordingClient, ReplayClient, ReplayMismatchError, Transcript, read_transcript

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "llm"
MESSAGES = [
    {"role": "system", "content": "You write reward functions."},
    {"role": "user", "content": "Write compute_reward for DoorKey."},
]
SECRET = "sk-test-secret-4f9a1c"


class RecordedSleep:
    """Stands in for time.sleep: keeps the requested waits, does not wait."""

    def __init__(self):
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make(server: FakeLLMServer, **kw) -> OpenAIChatClient:
    args = dict(base_url=server.base_url, model="fake-model", api_key_env="RLREWARD_TEST_LLM_KEY", timeout_s=0.5,
                max_retries=2, backoff_s=0.01, backoff_max_s=0.05, max_concurrency=1, rng_seed=0)
    args.update(kw)
    return OpenAIChatClient(**args)


@pytest.fixture
def serve():
    servers: list[FakeLLMServer] = []

    def _serve(script, **kw) -> FakeLLMServer:
        server = FakeLLMServer(script, **kw).start()
        servers.append(server)
        return server

    yield _serve
    for server in servers:
        server.stop()


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("RLREWARD_TEST_LLM_KEY", raising=False)


def test_valid_reply_and_request_fields(serve):
    server = serve([Step.reply(VALID_CODE)])
    client = make(server, temperature=0.7, max_tokens=256)
    assert isinstance(client, ChatClient)
    reply = client.complete(MESSAGES, seed=5)
    assert reply.text == VALID_CODE
    assert reply.attempts == 1 and reply.model == "fake-model" and reply.finish_reason == "stop"
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0 and reply.latency_s >= 0
    body = server.requests[0]
    assert body["model"] == "fake-model" and body["seed"] == 5 and body["messages"] == MESSAGES
    assert body["temperature"] == 0.7 and body["max_tokens"] == 256
    assert "n" not in body  # K candidates are K requests, never n=K
    assert extract_code(reply.text).startswith("def _dist")


def test_default_script_replies_in_order(serve):
    server = serve(default_script(slow_s=1.5))
    client = make(server, max_retries=3)
    texts = [client.complete(MESSAGES, seed=i).text for i in range(4)]
    assert texts == [VALID_CODE, SYNTAX_ERROR_CODE, HOSTILE_CODE, NO_CODE_REPLY]
    assert "def compute_reward(state, action, next_state)\n" in extract_code(texts[1])
    assert "os.system" in extract_code(texts[2])
    with pytest.raises(NoCodeError):
        extract_code(texts[3])
    # slow (timeout) -> 429 -> 500 -> reply without usage: one request, three retries
    reply = client.complete(MESSAGES, seed=4)
    assert reply.attempts == 4 and reply.text == VALID_CODE
    assert reply.prompt_tokens is None and reply.completion_tokens is None
    assert server.request_count == 8
    assert client.usage.as_dict()["requests"] == 5 and client.usage.retries == 3


def test_retries_on_429_and_500_are_counted(serve):
    server = serve([Step.status_error(429, retry_after="0"), Step.status_error(500), Step.reply(VALID_CODE)])
    sleep = RecordedSleep()
    client = make(server, backoff_s=5.0, backoff_max_s=10.0, sleep=sleep)
    reply = client.complete(MESSAGES, seed=1)
    assert reply.text == VALID_CODE and reply.attempts == 3
    assert server.request_count == 3
    assert client.usage.requests == 1 and client.usage.retries == 2 and client.usage.failures == 0
    # Retry-After: 0 replaces the 5 s backoff; the 500 waits backoff_s * 2 * jitter, jitter in [0.5, 1]
    assert sleep.waits[0] == 0.0
    assert 5.0 <= sleep.waits[1] <= 10.0


def test_retry_after_is_capped(serve):
    server = serve([Step.status_error(429, retry_after="3600"), Step.reply(VALID_CODE)])
    sleep = RecordedSleep()
    client = make(server, backoff_max_s=2.0, sleep=sleep)
    assert client.complete(MESSAGES).attempts == 2
    assert sleep.waits == [2.0]


def test_server_errors_exhaust_retries(serve):
    server = serve([Step.status_error(503)] * 3, fallback=Step.reply(VALID_CODE))
    client = make(server, max_retries=2)
    with pytest.raises(LLMRequestError, match=r"HTTP 503 after 3 attempt\(s\) \(retries exhausted\)") as info:
        client.complete(MESSAGES)
    assert info.value.status == 503 and info.value.attempts == 3 and info.value.model == "fake-model"
    assert server.request_count == 3
    assert client.usage.failures == 1 and client.usage.retries == 2


def test_timeout_is_retried_then_fails_cleanly(serve):
    server = serve([Step.slow(1.5), Step.slow(1.5)])
    client = make(server, timeout_s=0.5, max_retries=1)
    with pytest.raises(LLMRequestError, match="timeout after 2 attempt") as info:
        client.complete(MESSAGES)
    assert info.value.kind == "timeout" and info.value.status is None and info.value.attempts == 2
    assert server.request_count == 2
    assert client.usage.failures == 1 and client.usage.requests == 1


def test_timeout_then_success(serve):
    server = serve([Step.slow(1.5), Step.reply(VALID_CODE)])
    reply = make(server, timeout_s=0.5, max_retries=1).complete(MESSAGES)
    assert reply.attempts == 2 and reply.text == VALID_CODE


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_are_not_retried(serve, status):
    server = serve([Step.status_error(status, message="bad request")])
    client = make(server, max_retries=3)
    expected = rf"model 'fake-model'.*HTTP {status} after 1 attempt\(s\) \(not retryable\)"
    with pytest.raises(LLMRequestError, match=expected) as info:
        client.complete(MESSAGES)
    assert info.value.status == status and info.value.attempts == 1
    assert server.request_count == 1


def test_connection_error_is_retried(serve):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = OpenAIChatClient(base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key_env="RLREWARD_TEST_LLM_KEY",
                              timeout_s=0.5, max_retries=2, backoff_s=0.01, backoff_max_s=0.02)
    with pytest.raises(LLMRequestError, match="connection after 3 attempt") as info:
        client.complete(MESSAGES)
    assert info.value.kind == "connection" and info.value.attempts == 3


def test_usage_and_cost_with_and_without_usage_field(serve):
    server = serve([Step.reply(VALID_CODE), Step.reply(VALID_CODE, usage=False), Step.reply(NO_CODE_REPLY)])
    client = make(server, price_per_1k_prompt=2.0, price_per_1k_completion=10.0)
    a = client.complete(MESSAGES)
    b = client.complete(MESSAGES)
    c = client.complete(MESSAGES)
    assert b.prompt_tokens is None and b.completion_tokens is None
    totals = client.usage.as_dict()
    assert totals["requests"] == 3 and totals["unreported_usage"] == 1
    assert totals["prompt_tokens"] == a.prompt_tokens + c.prompt_tokens
    assert totals["completion_tokens"] == a.completion_tokens + c.completion_tokens
    expected = (a.prompt_tokens + c.prompt_tokens) * 2.0 / 1000 + (a.completion_tokens + c.completion_tokens) * 10.0 / 1000
    assert totals["cost"] == pytest.approx(expected)
    assert totals["cost"] > 0


def test_complete_many_sends_k_requests_concurrently(serve):
    server = serve([], fallback=Step.reply("seed={seed}", delay_s=0.4))
    client = make(server, timeout_s=5.0, max_concurrency=2)
    replies = client.complete_many(MESSAGES, k=4, seeds=[10, 11, 12, 13])
    assert [r.text for r in replies] == ["seed=10", "seed=11", "seed=12", "seed=13"]  # candidate order
    assert server.request_count == 4
    assert sorted(body["seed"] for body in server.requests) == [10, 11, 12, 13]
    assert server.max_in_flight == 2  # two at once, never more
    assert client.usage.requests == 4


def test_complete_many_one_failure_does_not_sink_the_others(serve):
    server = serve([Step.reply("a"), Step.status_error(400), Step.reply("b")])
    client = make(server, max_concurrency=1)
    out = client.complete_many(MESSAGES, k=3, seeds=[1, 2, 3])
    assert isinstance(out[0], ChatReply) and out[0].text == "a"
    assert isinstance(out[1], LLMRequestError) and out[1].status == 400
    assert isinstance(out[2], ChatReply) and out[2].text == "b"
    assert client.usage.failures == 1 and client.usage.requests == 3
    with pytest.raises(ValueError, match="2 seeds for k=3"):
        client.complete_many(MESSAGES, k=3, seeds=[1, 2])


def test_api_key_stays_out_of_repr_errors_and_transcript(serve, monkeypatch, tmp_path):
    monkeypatch.setenv("RLREWARD_TEST_LLM_KEY", SECRET)
    server = serve([Step.reply(VALID_CODE), Step.status_error(401, message=f"Incorrect API key provided: {SECRET}")])
    inner = make(server)
    client = RecordingClient(inner, Transcript(tmp_path / "t.jsonl"))
    client.complete(MESSAGES, seed=1)
    with pytest.raises(LLMRequestError) as info:
        client.complete(MESSAGES, seed=2)
    client.close()
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"  # the key is really used
    text = (tmp_path / "t.jsonl").read_text()
    assert SECRET not in text and "RLREWARD_TEST_LLM_KEY" not in text
    assert SECRET not in str(info.value) and "***" in str(info.value)
    assert SECRET not in repr(inner) and SECRET not in repr(client)
    assert SECRET not in json.dumps(inner.request_params())
    records = read_transcript(tmp_path / "t.jsonl")
    assert [r["index"] for r in records] == [0, 1]
    assert records[0]["reply"]["text"] == VALID_CODE and records[0]["params"]["model"] == "fake-model"
    assert records[1]["error"]["status"] == 401 and records[1]["reply"] is None


def test_local_endpoint_without_key_gets_a_dummy_remote_does_not(serve):
    server = serve([Step.reply("ok")])
    make(server).complete(MESSAGES)
    assert server.headers[0]["authorization"].startswith("Bearer sk-local")
    with pytest.raises(ValueError, match="'RLREWARD_TEST_LLM_KEY' holds no API key"):
        OpenAIChatClient(base_url="https://api.example.com/v1", model="m", api_key_env="RLREWARD_TEST_LLM_KEY")


def test_record_then_replay_without_server(serve, tmp_path):
    path = tmp_path / "run" / "llm.jsonl"
    server = serve([], fallback=Step.reply("candidate seed={seed} n={n}"))
    recorder = RecordingClient(make(server, max_concurrency=3), Transcript(path))
    recorded = recorder.complete_many(MESSAGES, k=3, seeds=[0, 1, 2])
    follow_up = MESSAGES + [{"role": "assistant", "content": recorded[0].text}, {"role": "user", "content": "improve it"}]
    recorded.append(recorder.complete(follow_up, seed=None))
    recorder.close()
    server.stop()
    server.script[:] = [Step.status_error(400)]  # would fail, if it were reached

    replay = ReplayClient(path)
    again = list(reversed(replay.complete_many(MESSAGES, k=3, seeds=[2, 1, 0])))  # order does not matter
    again.append(replay.complete(follow_up, seed=None))
    assert again == recorded  # text, tokens, latency, attempts: all identical
    assert server.request_count == 4
    assert replay.usage.requests == 4
    assert replay.usage.prompt_tokens == sum(r.prompt_tokens for r in recorded)


def test_replay_reraises_recorded_errors(serve, tmp_path):
    server = serve([Step.reply("x"), Step.status_error(404)])
    recorder = RecordingClient(make(server), Transcript(tmp_path / "t.jsonl"))
    out = recorder.complete_many(MESSAGES, k=2, seeds=[7, 8])
    recorder.close()
    replayed = ReplayClient(tmp_path / "t.jsonl").complete_many(MESSAGES, k=2, seeds=[7, 8])
    assert replayed[0] == out[0]
    assert isinstance(replayed[1], LLMRequestError) and replayed[1].status == 404 and str(replayed[1]) == str(out[1])


def test_replay_mismatch_names_the_request(tmp_path):
    path = tmp_path / "t.jsonl"
    with Transcript(path) as t:
        reply = ChatReply(text="r", prompt_tokens=1, completion_tokens=1, latency_s=0.1, model="m")
        t.append(messages=MESSAGES, seed=3, params={}, reply=reply)
    replay = ReplayClient(path)
    assert replay.complete(MESSAGES, seed=3) == reply
    with pytest.raises(ReplayMismatchError, match="replay request 1 .*never recorded") as info:
        replay.complete(MESSAGES, seed=3)  # recorded once, asked twice
    assert info.value.request_index == 1
    with pytest.raises(ReplayMismatchError, match="replay request 2 \\(seed=4"):
        replay.complete(MESSAGES, seed=4)
    with pytest.raises(ReplayMismatchError, match="replay request 3"):
        replay.complete([{"role": "user", "content": "something else"}], seed=3)


def test_transcript_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "t.jsonl"
    with Transcript(path) as t:
        t.append(messages=MESSAGES, seed=1, params={}, reply=ChatReply("a", None, None, 0.0, "m"))
    with open(path, "a") as f:
        f.write('{"index": 1, "key": "abc')  # killed mid-write
    assert len(read_transcript(path)) == 1
    assert ReplayClient(path).complete(MESSAGES, seed=1).text == "a"
    path.write_text('{"broken\n' + path.read_text())
    with pytest.raises(ValueError, match="line 1 is not valid JSON"):
        read_transcript(path)


def test_make_client_from_configs(serve, tmp_path):
    server = serve([Step.reply("hello")])
    cfg = OmegaConf.load(CONFIGS / "openai.yaml")
    cfg.base_url = server.base_url
    cfg.api_key_env = "RLREWARD_TEST_LLM_KEY"
    cfg.record_transcript = str(tmp_path / "rec.jsonl")
    client = make_client(cfg)
    assert isinstance(client, RecordingClient) and isinstance(client.inner, OpenAIChatClient)
    assert client.inner.model == cfg.model and client.inner.max_concurrency == cfg.max_concurrency
    assert client.complete(MESSAGES, seed=0).text == "hello"
    client.close()

    replay_cfg = OmegaConf.load(CONFIGS / "replay.yaml")
    with pytest.raises(ValueError, match="llm.transcript must name"):
        make_client(replay_cfg)
    replay_cfg.transcript = str(tmp_path / "rec.jsonl")
    replay = make_client(replay_cfg)
    assert isinstance(replay, ReplayClient) and replay.complete(MESSAGES, seed=0).text == "hello"

    with pytest.raises(ValueError, match=r"unknown llm client name 'nope'; known: \['openai', 'replay'\]"):
        make_client({"name": "nope"})
    sentinel = object()
    assert make_client({"name": "offline"}, extra={"offline": lambda c: sentinel}) is sentinel
    with pytest.raises(ValueError, match=r"unknown llm config key\(s\) \['temprature'\]"):
        make_client({"name": "openai", "base_url": server.base_url, "model": "m", "temprature": 0.1})


# ------------------------------------------------------------------------------------------ faults
def test_malformed_json_is_retried_then_a_request_error(serve):
    server = serve([Step.malformed(), Step.malformed(b"not json at all"), Step.malformed(b'{"choices": []}')])
    client = make(server, max_retries=2)
    with pytest.raises(LLMRequestError, match=r"malformed after 3 attempt\(s\) \(retries exhausted\): malformed reply") as info:
        client.complete(MESSAGES)
    assert info.value.kind == "malformed" and info.value.attempts == 3 and info.value.status is None
    assert server.request_count == 3
    assert client.usage.failures == 1 and client.usage.retries == 2 and client.usage.requests == 1


def test_malformed_then_valid_reply(serve):
    server = serve([Step.malformed(b'{"choices": [{"index": 0, "message": '), Step.reply(VALID_CODE)])
    reply = make(server, max_retries=1).complete(MESSAGES)
    assert reply.text == VALID_CODE and reply.attempts == 2 and server.request_count == 2


def test_malformed_reply_in_complete_many_is_a_failed_slot(serve):
    server = serve([Step.malformed(), Step.reply(VALID_CODE)])
    client = make(server, max_retries=0)
    out = client.complete_many(MESSAGES, 2, seeds=[0, 1])
    assert isinstance(out[0], LLMRequestError) and out[0].kind == "malformed"
    assert isinstance(out[1], ChatReply) and out[1].text == VALID_CODE


def test_dripping_server_stops_at_the_deadline(serve):
    import time

    server = serve([Step.drip(0.05)] * 3)  # ~30 s for the whole body, each byte well within timeout_s
    client = make(server, timeout_s=0.5, deadline_s=1.5, max_retries=2)
    start = time.monotonic()
    with pytest.raises(LLMRequestError, match=r"deadline of 1\.5 s") as info:
        client.complete(MESSAGES)
    elapsed = time.monotonic() - start
    assert elapsed < 3.0, f"the deadline did not bound the request: {elapsed:.1f} s"
    assert info.value.kind == "deadline" and info.value.attempts == 1
    assert client.usage.failures == 1


def test_deadline_bounds_retries_and_backoff(serve):
    import time

    server = serve([Step.slow(1.0)] * 10)
    client = make(server, timeout_s=0.4, deadline_s=1.0, max_retries=9, backoff_s=0.2, backoff_max_s=0.2,
                  sleep=time.sleep)
    start = time.monotonic()
    with pytest.raises(LLMRequestError) as info:
        client.complete(MESSAGES)
    assert time.monotonic() - start < 2.0
    assert info.value.kind in ("timeout", "deadline") and info.value.attempts < 10


def test_deadline_must_be_positive_or_null(serve):
    server = serve([Step.reply(VALID_CODE)])
    with pytest.raises(ValueError, match="deadline_s > 0"):
        make(server, deadline_s=0)
    assert make(server, deadline_s=None).complete(MESSAGES).text == VALID_CODE


def test_cut_off_reply_keeps_its_finish_reason(serve):
    server = serve([Step.cut_off(), Step.cut_off("```python\ndef compute_reward(state, act")])
    client = make(server, max_tokens=64)
    empty, truncated = client.complete(MESSAGES), client.complete(MESSAGES)
    assert (empty.text, empty.finish_reason) == ("", "length")
    assert truncated.finish_reason == "length" and truncated.text.endswith("(state, act")
    assert client.usage.failures == 0


def test_preflight_checks_endpoint_and_model(serve):
    server = serve([], model="fake-model")
    make(server).preflight()
    assert server.models_requests == 1 and server.request_count == 0
    assert make(server).usage.requests == 0
    with pytest.raises(LLMRequestError, match=r"model 'other'.*does not serve this model; it serves 'fake-model'") as info:
        make(server, model="other").preflight()
    assert info.value.kind == "preflight"


def test_preflight_without_a_server_fails_fast_with_one_message():
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = OpenAIChatClient(base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key_env="RLREWARD_TEST_LLM_KEY",
                              timeout_s=0.5, max_retries=4)
    start = time.monotonic()
    with pytest.raises(LLMRequestError) as info:
        client.preflight()
    assert time.monotonic() - start < 2.0
    text = str(info.value)
    assert f"http://127.0.0.1:{port}/v1" in text and "'m'" in text and "cannot connect" in text
    assert "llm.preflight=false" in text and client.usage.requests == 0
