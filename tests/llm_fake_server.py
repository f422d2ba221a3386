"""A local OpenAI-compatible chat server that plays a script, for client and loop tests.

`FakeLLMServer(script)` listens on 127.0.0.1 (free port) in a background thread and answers each
``POST /v1/chat/completions`` with the next `Step` of its script, in arrival order (``GET /v1/models``
lists `model` and is counted in `models_requests`, never taking a step); when the script
runs out it keeps answering with `fallback` (a valid reward reply unless told otherwise). It counts
and keeps every request body it received and the peak number of requests in flight.

Reply text may use ``{seed}`` and ``{n}`` (0-based request number), filled in from the request.

    with FakeLLMServer([Step.status(429, retry_after="0"), Step.reply(VALID_CODE)]) as server:
        client = OpenAIChatClient(base_url=server.base_url, model="fake", ...)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VALID_CODE = '''Here is a reward that pays for reaching the goal.

```python
def _dist(a, b):
    return (a - b).abs().sum(-1).float()

def compute_reward(state, action, next_state):
    d = _dist(next_state["agent_pos"], next_state["goal_pos"])
    progress = _dist(state["agent_pos"], state["goal_pos"]) - d
    r = (d == 0).float() + 0.1 * progress
    return r, {"at_goal": (d == 0).float(), "progress": progress}
```
'''

SYNTAX_ERROR_CODE = '''```python
def compute_reward(state, action, next_state)
    return torch.zeros(action.shape[0]), {}
```
'''

HOSTILE_CODE = '''```python
import os

def compute_reward(state, action, next_state):
    os.system("echo pwned")
    open("/tmp/llm_fake_server_pwned", "w").write("x")
    while True:
        pass
```
'''

NO_CODE_REPLY = "I would reward the agent for picking up the key and then for opening the door."


@dataclass
class Step:
    """One scripted answer.

    kind: "reply" (200 with `text`), "status" (error `status` with `headers` and a JSON error body).
    delay_s: sleep before answering (a "slow" reply sleeps past the client timeout).
    usage: include a ``usage`` field in a 200 answer.
    raw: send these bytes as the 200 body instead of a chat completion (malformed or partial JSON).
    drip_s: send the body one byte every `drip_s` seconds (a stalled server that never trips a read timeout).
    finish_reason: of the reply's choice; ``"length"`` is a reply cut off at max_tokens.
    null_content: send ``"content": null``.
    """

    kind: str = "reply"
    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    usage: bool = True
    raw: bytes | None = None
    drip_s: float = 0.0
    finish_reason: str = "stop"
    null_content: bool = False

    @classmethod
    def reply(cls, text: str, *, usage: bool = True, delay_s: float = 0.0) -> "Step":
        return cls(kind="reply", text=text, usage=usage, delay_s=delay_s)

    @classmethod
    def slow(cls, delay_s: float, text: str = VALID_CODE) -> "Step":
        return cls(kind="reply", text=text, delay_s=delay_s)

    @classmethod
    def malformed(cls, raw: bytes = b'{"id": "chatcmpl-x", "choices": [{"index": 0, "mess') -> "Step":
        return cls(kind="reply", raw=raw)

    @classmethod
    def drip(cls, drip_s: float = 0.2, text: str = VALID_CODE) -> "Step":
        return cls(kind="reply", text=text, drip_s=drip_s)

    @classmethod
    def cut_off(cls, text: str | None = None) -> "Step":
        """A reply that hit max_tokens: `text` (truncated content) or null content."""
        return cls(kind="reply", text=text or "", finish_reason="length", null_content=text is None)

    @classmethod
    def status_error(cls, status: int, *, retry_after: str | None = None, message: str = "scripted error") -> "Step":
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(kind="status", status=status, headers=headers, text=message)


def default_script(slow_s: float = 2.0) -> list[Step]:
    """The standard tour: valid, syntax error, hostile, no code, slow, 429, 500, no usage."""
    return [
        Step.reply(VALID_CODE),
        Step.reply(SYNTAX_ERROR_CODE),
        Step.reply(HOSTILE_CODE),
        Step.reply(NO_CODE_REPLY),
        Step.slow(slow_s),
        Step.status_error(429, retry_after="0", message="rate limited"),
        Step.status_error(500, message="internal error"),
        Step.reply(VALID_CODE, usage=False),
    ]


class FakeLLMServer:
    """Scripted OpenAI-compatible server; use as a context manager (see module docstring)."""

    def __init__(self, script: list[Step] | None = None, *, fallback: Step | None = None, model: str = "fake-model"):
        self.script = list(default_script() if script is None else script)
        self.fallback = fallback if fallback is not None else Step.reply(VALID_CODE)
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.models_requests = 0
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[Step, int]:
        with self._lock:
            n = len(self.requests)
            self.requests.append(body)
            self.headers.append(headers)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            step = self.script.pop(0) if self.script else self.fallback
        return step, n

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def start(self) -> "FakeLLMServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, payload: dict[str, Any] | bytes, headers: dict[str, str],
                      drip_s: float = 0.0) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    if drip_s:
                        for i in range(len(data)):
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                            time.sleep(drip_s)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) before the slow answer came

            def do_GET(self) -> None:
                if not self.path.rstrip("/").endswith("/models"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                with server._lock:
                    server.models_requests += 1
                self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model", "created": 0,
                                                             "owned_by": "fake"}]}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length) if length else b"{}"
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                body = json.loads(raw or b"{}")
                step, n = server._next(body, {k.lower(): v for k, v in self.headers.items()})
                try:
                    if step.delay_s:
                        time.sleep(step.delay_s)
                    if step.kind == "status":
                        error = {"error": {"message": step.text, "type": "scripted", "code": step.status}}
                        self._send(step.status, error, step.headers)
                        return
                    if step.raw is not None:
                        self._send(200, step.raw, step.headers, step.drip_s)
                        return
                    text = step.text.replace("{seed}", str(body.get("seed"))).replace("{n}", str(n))
                    payload: dict[str, Any] = {
                        "id": f"chatcmpl-fake-{n}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": server.model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": None if step.null_content else text},
                                     "finish_reason": step.finish_reason}],
                    }
                    if step.usage:
                        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
                        completion = len(text.split())
                        payload["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                            "total_tokens": prompt + completion}
                    self._send(200, payload, step.headers, step.drip_s)
                finally:
                    server._done()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
