"""Chat model clients for reward synthesis.

`ChatClient` is the surface the search loop talks to: `complete(messages, seed=)` returns one
`ChatReply`; `complete_many(messages, k, seeds)` asks for K candidates as K separate requests (each
with its own seed, so every candidate can be replayed on its own) and returns a reply or an
`LLMRequestError` per candidate, so one failure does not sink the others.

`OpenAIChatClient` talks to any OpenAI-compatible endpoint (hosted API, vLLM, llama.cpp server,
Ollama) through the `openai` package. The package's own retries are switched off
(``max_retries=0``) and done here, so each attempt is counted: 429, 5xx (and 408), timeouts and
connection errors are retried with capped exponential backoff plus jitter, honouring a
``Retry-After`` header; any other 4xx fails at once. The API key is read once from the environment
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
        timeout_s: per-attempt timeout in seconds.
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
        if max_retries < 0 or max_concurrency < 1 or timeout_s <= 0:
            raise ValueError(f"need max_retries >= 0, max_concurrency >= 1, timeout_s > 0; "
                             f"got {max_retries}, {max_concurrency}, {timeout_s}")
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout_s = float(timeout_s)
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
            "base_url", "model", "api_key_env", "temperature", "max_tokens", "timeout_s", "max_retries",
            "backoff_s", "backoff_max_s", "max_concurrency", "price_per_1k_prompt", "price_per_1k_completion",
        }
        kwargs = {k: v for k, v in cfg.items() if k not in ("name", "record_transcript")}
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

    def complete(self, messages: Messages, *, seed: int | None = None) -> ChatReply:
        """One chat completion with counted retries; raises `LLMRequestError` when it fails for good."""
        params: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            params["temperature"] = self.temperature
        if self.max_tokens is not None:
            params["max_tokens"] = int(self.max_tokens)
        if seed is not None:
            params["seed"] = int(seed)
        attempt = 0
        while True:
            attempt += 1
            start = time.perf_counter()
            try:
                completion = self._client.chat.completions.create(**params)
            except self._openai.OpenAIError as err:
                retryable, status, kind, retry_after = self._classify(err)
                if retryable and attempt <= self.max_retries:
                    self._sleep(self._backoff(attempt - 1, retry_after))
                    continue
                what = f"HTTP {status}" if status is not None else kind
                why = "retries exhausted" if retryable else "not retryable"
                error = LLMRequestError(
                    self._scrub(f"LLM request to model {self.model!r} at {self.base_url} failed with {what} after "
                                f"{attempt} attempt(s) ({why}): {type(err).__name__}: {err}"),
                    model=self.model, status=status, attempts=attempt, kind=kind,
                )
                self.usage.add_failure(error)
                raise error from None
            latency = time.perf_counter() - start
            reply = self._to_reply(completion, latency, attempt)
            self.usage.add_reply(reply)
            return reply

    def _to_reply(self, completion: Any, latency: float, attempts: int) -> ChatReply:
        choices = getattr(completion, "choices", None) or []
        if not choices:
            error = LLMRequestError(
                f"LLM response from model {self.model!r} has no choices", model=self.model, attempts=attempts, kind="response"
            )
            self.usage.add_failure(error)
            raise error
        choice = choices[0]
        usage = getattr(completion, "usage", None)
        return ChatReply(
            text=(choice.message.content if choice.message is not None else None) or "",
            prompt_tokens=getattr(usage, "prompt_tokens", None) if usage is not None else None,
            completion_tokens=getattr(usage, "completion_tokens", None) if usage is not None else None,
            latency_s=latency,
            model=getattr(completion, "model", None) or self.model,
            attempts=attempts,
            finish_reason=getattr(choice, "finish_reason", None),
        )

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
