"""Chat model clients for reward synthesis.

`ChatClient` is the surface the search loop talks to: `complete(messages, seed=)` returns one
`ChatReply`; `complete_many(messages, k, seeds)` asks for K candidates as K separate requests (each
with its own seed, so every candidate can be replayed on its own) and returns a reply or an
`LLMRequestError` per candidate, so one failure does not sink the others.

`OpenAIChatClient` talks to any OpenAI-compatible endpoint (hosted API, vLLM, llama.cpp server,
Ollama) through the `openai` package. The package's own retries are switched off
(``max_retries=0``) and done here, so each attempt is counted: 429, 5xx (and 408), timeouts and
connection errors are retried with capped exponential backoff plus jitter, honouring a
``Retry-After`` header; any other 4xx fails at once. A malformed or partial answer (a body that is
not JSON, or JSON without a usable ``choices[0].message``) is retried the same way and then fails
as an `LLMRequestError` of kind ``"malformed"``. Every request has an overall deadline
(``deadline_s``) over all its attempts and backoff waits: each attempt runs in a daemon worker
thread and the caller stops waiting for it at the deadline, because ``timeout_s`` only bounds each
network read and a server that drips a byte at a time never trips it. `preflight()` checks the
endpoint and model once (``GET /models``). The API key is read once from the environment
variable named in the config and never appears in a repr, a log line, an error or a transcript.

`make_client(cfg)` builds a client from a ``configs/llm/*.yaml`` config by its ``name``. The shared
types (`ChatReply`, `LLMRequestError`, `Usage`, `ChatClient`) live in :mod:`rewards.llm.search.chat`
and are re-exported here.
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from rewards.llm.search.chat import ChatClient, ChatReply, LLMRequestError, Messages, Usage, complete_concurrently
from rewards.llm.search.transcript import RecordingClient, ReplayClient, Transcript

__all__ = [
    "ChatReply",
    "ChatClient",
    "LLMRequestError",
    "Usage",
    "OpenAIChatClient",
    "complete_concurrently",
    "make_client",
    "CLIENT_BUILDERS",
    "Messages",
]

# HTTP statuses worth another try: rate limit, request timeout, and every server error.
RETRY_STATUSES = frozenset({408, 429})
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})
DUMMY_LOCAL_KEY = "sk-local-no-key"


class MalformedReplyError(ValueError):
    """An answer that is not a usable chat completion (retried like a 5xx)."""


class _DeadlineExceeded(Exception):
    """An attempt still running at the request's deadline."""


def _is_local(base_url: str) -> bool:
    return (urlparse(base_url).hostname or "") in LOCAL_HOSTS


def _retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """Seconds asked for by ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class OpenAIChatClient:
    """Client for an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (vLLM) or ``https://api.openai.com/v1``.
        model: model name sent with each request.
        api_key_env: name of the environment variable holding the key. When it is unset, a local
            endpoint (127.0.0.1 / localhost) gets a dummy key; a remote one is an error.
        temperature, max_tokens: sampling parameters sent with each request (None: server default).
        timeout_s: per-read timeout in seconds (connect, each read/write of an attempt).
        deadline_s: wall-clock limit on one request as a whole: every attempt and backoff wait. An
            attempt still running at the deadline is abandoned (its daemon thread ends when its
            connection does) and the request fails with kind ``"deadline"``. None: no deadline.
        max_retries: extra attempts after the first on retryable failures.
        backoff_s: first backoff; attempt i waits backoff_s * 2**i scaled by a jitter in [0.5, 1],
            capped at `backoff_max_s`. A ``Retry-After`` header replaces the computed wait (same cap).
        max_concurrency: threads used by `complete_many`.
        price_per_1k_prompt / price_per_1k_completion: currency per 1000 tokens, for `usage.cost`.
        sleep: injectable sleep (tests record the waits).
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float | None = 1.0,
        max_tokens: int | None = 4096,
        timeout_s: float = 120.0,
        deadline_s: float | None = 300.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        backoff_max_s: float = 30.0,
        max_concurrency: int = 4,
        price_per_1k_prompt: float = 0.0,
        price_per_1k_completion: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        rng_seed: int | None = None,
    ):
        import openai

        if not model:
            raise ValueError("llm.model must name the model to query")
        if max_retries < 0 or max_concurrency < 1 or timeout_s <= 0 or (deadline_s is not None and deadline_s <= 0):
            raise ValueError(f"need max_retries >= 0, max_concurrency >= 1, timeout_s > 0, deadline_s > 0 or null; "
                             f"got {max_retries}, {max_concurrency}, {timeout_s}, {deadline_s}")
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = float(timeout_s)
        self.deadline_s = None if deadline_s is None else float(deadline_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.max_concurrency = int(max_concurrency)
        self.usage = Usage(price_per_1k_prompt=price_per_1k_prompt, price_per_1k_completion=price_per_1k_completion)
        self._sleep = sleep
        self._rng = random.Random(rng_seed)
        self._rng_lock = threading.Lock()
        key = os.environ.get(api_key_env) if api_key_env else None
        if not key:
            if not _is_local(base_url):
                raise ValueError(
                    f"environment variable {api_key_env!r} holds no API key, and {base_url!r} is not a local "
                    "endpoint; export the key or set llm.api_key_env"
                )
            key = DUMMY_LOCAL_KEY
        self._openai = openai
        self._client = openai.OpenAI(base_url=base_url, api_key=key, timeout=self.timeout_s, max_retries=0)

    def __repr__(self) -> str:
        return f"OpenAIChatClient(base_url={self.base_url!r}, model={self.model!r}, max_concurrency={self.max_concurrency})"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], **overrides: Any) -> "OpenAIChatClient":
        """Build from an ``llm`` config mapping (``name`` and ``record_transcript`` are skipped)."""
        known = {
            "base_url", "model", "api_key_env", "temperature", "max_tokens", "timeout_s", "deadline_s", "max_retries",
            "backoff_s", "backoff_max_s", "max_concurrency", "price_per_1k_prompt", "price_per_1k_completion",
        }
        kwargs = {k: v for k, v in cfg.items() if k not in ("name", "record_transcript", "preflight")}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown llm config key(s) {unknown} for name 'openai'; known: {sorted(known)}")
        kwargs.update(overrides)
        return cls(**kwargs)

    def request_params(self) -> dict[str, Any]:
        """The parameters sent with each request, for transcripts (no key)."""
        return {
            "base_url": self.base_url,
            "model": self.model,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "timeout_s": self.timeout_s,
            "deadline_s": self.deadline_s,
            "max_retries": self.max_retries,
        }

    # ------------------------------------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        with self._rng_lock:
            jitter = 0.5 + 0.5 * self._rng.random()
        return min(self.backoff_s * (2.0**attempt) * jitter, self.backoff_max_s)

    def _scrub(self, text: str) -> str:
        key = self._client.api_key
        return text.replace(key, "***") if key else text

    def _classify(self, err: Exception) -> tuple[bool, int | None, str, float | None]:
        """(retryable, status, kind, retry_after_s) for an exception raised by the openai client."""
        o = self._openai
        if isinstance(err, (MalformedReplyError, o.APIResponseValidationError)):
            return True, None, "malformed", None
        if isinstance(err, o.APITimeoutError):
            return True, None, "timeout", None
        if isinstance(err, o.APIConnectionError):
            return True, None, "connection", None
        if isinstance(err, o.APIStatusError):
            status = err.status_code
            retryable = status in RETRY_STATUSES or status >= 500
            headers = getattr(err.response, "headers", None)
            return retryable, status, "status", _retry_after_s(headers)
        return False, None, "response", None

    def _attempt(self, params: dict[str, Any], wait_s: float | None) -> Any:
        """One HTTP attempt in a daemon thread; the caller waits at most `wait_s` (None: no limit).

        Returns the completion or raises what the attempt raised; `_DeadlineExceeded` when the
        attempt is still running after `wait_s` (the thread is left to finish on its own: its
        connection has the per-read timeout, and it touches nothing but its local result).
        """
        if wait_s is None:
            return self._client.chat.completions.create(**params)
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = self._client.chat.completions.create(**params)
            except BaseException as err:  # noqa: BLE001 - handed over to the caller
                box["error"] = err
            finally:
                done.set()

        threading.Thread(target=run, name="llm-attempt", daemon=True).start()
        if not done.wait(max(wait_s, 0.0)):
            raise _DeadlineExceeded()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def _fail(self, message: str, *, status: int | None, attempts: int, kind: str) -> LLMRequestError:
        error = LLMRequestError(self._scrub(message), model=self.model, status=status, attempts=attempts, kind=kind)
        self.usage.add_failure(error)
        return error

    def complete(self, messages: Messages, *, seed: int | None = None) -> ChatReply:
        """One chat completion with counted retries within `deadline_s`; raises `LLMRequestError` when it fails for good."""
        params: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = int(self.max_tokens)
        if seed is not None:
            params["seed"] = int(seed)
        begin = time.monotonic()
        deadline = None if self.deadline_s is None else begin + self.deadline_s
        where = f"LLM request to model {self.model!r} at {self.base_url}"
        attempt = 0
        while True:
            attempt += 1
            start = time.perf_counter()
            remaining = None if deadline is None else deadline - time.monotonic()
            try:
                if remaining is not None:
                    # no single read may outlast the deadline either
                    params["timeout"] = max(min(self.timeout_s, remaining), 0.001)
                completion = self._attempt(params, remaining)
                latency = time.perf_counter() - start
                reply = self._to_reply(completion, latency, attempt)
            except _DeadlineExceeded:
                raise self._fail(
                    f"{where} failed: no complete answer within the deadline of {self.deadline_s:g} s "
                    f"(llm.deadline_s; llm.timeout_s={self.timeout_s:g} s bounds each read only) after {attempt} "
                    f"attempt(s); the server may be stalled or sending its answer very slowly",
                    status=None, attempts=attempt, kind="deadline",
                ) from None
            except (self._openai.OpenAIError, ValueError, TypeError, KeyError, AttributeError) as err:
                if not isinstance(err, (self._openai.OpenAIError, MalformedReplyError)):
                    # the body is not JSON (json.JSONDecodeError) or not shaped like a chat completion
                    err = MalformedReplyError(f"the answer could not be parsed: {type(err).__name__}: {err}")
                retryable, status, kind, retry_after = self._classify(err)
                if retryable and attempt <= self.max_retries:
                    wait = self._backoff(attempt - 1, retry_after)
                    if deadline is not None and time.monotonic() + wait >= deadline:
                        wait = max(deadline - time.monotonic(), 0.0)
                    self._sleep(wait)
                    if deadline is None or time.monotonic() < deadline:
                        continue
                what = f"HTTP {status}" if status is not None else kind
                why = "retries exhausted" if retryable else "not retryable"
                if retryable and attempt <= self.max_retries:
                    why = f"deadline of {self.deadline_s:g} s reached"
                detail = f"malformed reply: {err}" if kind == "malformed" else f"{type(err).__name__}: {err}"
                raise self._fail(f"{where} failed with {what} after {attempt} attempt(s) ({why}): {detail}",
                                 status=status, attempts=attempt, kind=kind) from None
            self.usage.add_reply(reply)
            return reply

    def _to_reply(self, completion: Any, latency: float, attempts: int) -> ChatReply:
        """The reply of a parsed completion; `MalformedReplyError` when it is not a usable chat completion."""
        if isinstance(completion, (str, bytes)):
            head = completion[:200] if isinstance(completion, str) else completion[:200].decode(errors="replace")
            raise MalformedReplyError(f"the answer is not a JSON chat completion (starts with {head!r})")
        choices = getattr(completion, "choices", None) or []
        if not isinstance(choices, list) or not choices:
            raise MalformedReplyError(f"LLM response from model {self.model!r} has no choices")
        choice = choices[0]
        message = getattr(choice, "message", None)
        finish_reason = getattr(choice, "finish_reason", None)
        content = getattr(message, "content", None) if message is not None else None
        if content is not None and not isinstance(content, str):
            raise MalformedReplyError(f"choices[0].message.content is a {type(content).__name__}, not text")
        if message is None and finish_reason != "length":
            raise MalformedReplyError("choices[0] has no message")
        usage = getattr(completion, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
        completion_tokens = getattr(usage, "completion_tokens", None) if usage is not None else None
        return ChatReply(
            text=content or "",
            prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None,
            completion_tokens=completion_tokens if isinstance(completion_tokens, int) else None,
            latency_s=latency,
            model=str(getattr(completion, "model", None) or self.model),
            attempts=attempts,
            finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        )

    def preflight(self) -> None:
        """Check once that the endpoint answers and serves `model` (``GET /models``).

        Raises `LLMRequestError` (kind ``"preflight"``) naming the endpoint, the model and the
        error. An endpoint without a models route (404/405) is accepted; a model list that does
        not hold `model` is an error. Not counted in `usage`; bounded by `timeout_s` and `deadline_s`.
        """
        wait = self.timeout_s if self.deadline_s is None else min(self.timeout_s, self.deadline_s)
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = [m.id for m in self._client.models.list(timeout=wait)]
            except BaseException as err:  # noqa: BLE001 - handed over to the caller
                box["error"] = err
            finally:
                done.set()

        threading.Thread(target=run, name="llm-preflight", daemon=True).start()
        head = f"LLM preflight failed: endpoint {self.base_url}, model {self.model!r}"
        if not done.wait(wait + 1.0):
            problem = f"no answer from GET {self.base_url.rstrip('/')}/models within {wait:g} s"
        elif "error" not in box:
            ids = box["value"]
            if not ids or self.model in ids:
                return
            shown = ", ".join(repr(i) for i in ids[:10]) + (f", ... ({len(ids)} in all)" if len(ids) > 10 else "")
            problem = f"the server does not serve this model; it serves {shown} (set llm.model)"
        else:
            err = box["error"]
            if isinstance(err, self._openai.APIStatusError) and err.status_code in (404, 405):
                return  # no models route on this server: nothing more to check without spending tokens
            if isinstance(err, self._openai.APITimeoutError):
                problem = f"timeout after {wait:g} s"
            elif isinstance(err, self._openai.APIConnectionError):
                cause = err.__cause__ or err.__context__
                problem = f"cannot connect ({type(err).__name__}: {err}{f' ({cause})' if cause else ''})"
            elif isinstance(err, self._openai.APIStatusError):
                problem = f"HTTP {err.status_code} from GET /models ({type(err).__name__}: {err})"
            elif isinstance(err, Exception):
                problem = f"{type(err).__name__}: {err}"
            else:
                raise err
        raise LLMRequestError(self._scrub(f"{head}: {problem}. Start the server or fix llm.base_url / llm.model; "
                                          "llm.preflight=false skips this check."),
                              model=self.model, attempts=1, kind="preflight")

    def complete_many(self, messages: Messages, k: int,
                      seeds: Sequence[int | None] | None = None) -> list[ChatReply | LLMRequestError]:
        """K candidates as K separate requests, `max_concurrency` at a time, in candidate order."""
        return complete_concurrently(self.complete, messages, k, seeds, self.max_concurrency)

    def close(self) -> None:
        self._client.close()


# ----------------------------------------------------------------------------------------------
def _as_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict of a config; an OmegaConf ``???`` (missing) value comes through as "???"."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(cfg):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf comes with hydra-core
        pass
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise TypeError(f"llm config must be a mapping, got {type(cfg).__name__}")


def _build_openai(cfg: dict[str, Any]) -> ChatClient:
    client: ChatClient = OpenAIChatClient.from_config(cfg)
    record = cfg.get("record_transcript")
    if record:
        client = RecordingClient(client, Transcript(record))
    return client


def _build_replay(cfg: dict[str, Any]) -> ChatClient:
    path = cfg.get("transcript")
    if not path or path == "???":
        raise ValueError("llm.transcript must name the transcript file to replay (llm=replay llm.transcript=PATH)")
    return ReplayClient(
        path,
        price_per_1k_prompt=float(cfg.get("price_per_1k_prompt", 0.0)),
        price_per_1k_completion=float(cfg.get("price_per_1k_completion", 0.0)),
    )


# name -> builder(cfg dict) -> ChatClient; extend per call with make_client(cfg, extra={...}).
CLIENT_BUILDERS: dict[str, Callable[[dict[str, Any]], ChatClient]] = {
    "openai": _build_openai,
    "replay": _build_replay,
}


def make_client(cfg: Any, extra: Mapping[str, Callable[[dict[str, Any]], ChatClient]] | None = None) -> ChatClient:
    """Client for an ``llm`` config (dict or DictConfig) chosen by ``cfg["name"]``.

    `extra` adds or overrides builders for this call (name -> builder taking the config dict).
    """
    data = _as_dict(cfg)
    builders = {**CLIENT_BUILDERS, **(extra or {})}
    name = data.get("name")
    if name not in builders:
        raise ValueError(f"unknown llm client name {name!r}; known: {sorted(builders)}")
    return builders[name](data)
