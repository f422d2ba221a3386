"""The chat surface of the reward search: replies, request errors, usage totals and the client protocol.

`ChatClient` is what the proposers talk to: `complete(messages, seed=)` returns one `ChatReply`;
`complete_many(messages, k, seeds)` asks for K candidates as K separate requests and returns a reply
or an `LLMRequestError` per candidate (`complete_concurrently` runs them). Implementations:
`rewards.llm.search.client.OpenAIChatClient` (an endpoint) and, in `rewards.llm.search.transcript`,
`RecordingClient` / `ReplayClient`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["ChatClient", "ChatReply", "LLMRequestError", "Messages", "Usage", "complete_concurrently"]

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class ChatReply:
    """One model answer.

    Attributes:
        text: the assistant message content ("" when the server sent none).
        prompt_tokens / completion_tokens: token counts as reported; None when the server sent no
            ``usage`` (they are then left out of the cost, not guessed).
        latency_s: wall seconds of the successful attempt.
        model: the model name the server reports (falls back to the requested one).
        attempts: HTTP attempts it took, 1 when the first one succeeded.
        finish_reason: "stop", "length" (hit max_tokens), ... or None.
    """

    text: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float
    model: str
    attempts: int = 1
    finish_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ChatReply":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class LLMRequestError(RuntimeError):
    """A chat request that failed for good: a non-retryable status or retries exhausted.

    Attributes: `model`, `status` (HTTP status or None for timeouts / connection errors),
    `attempts` (HTTP attempts made), `kind` ("status", "timeout", "connection", "response").
    """

    def __init__(self, message: str, *, model: str, status: int | None = None, attempts: int = 1, kind: str = "status"):
        super().__init__(message)
        self.model = model
        self.status = status
        self.attempts = attempts
        self.kind = kind

    def to_dict(self) -> dict[str, Any]:
        return {"message": str(self), "model": self.model, "status": self.status, "attempts": self.attempts, "kind": self.kind}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LLMRequestError":
        return cls(data["message"], model=data["model"], status=data.get("status"), attempts=data.get("attempts", 1),
                   kind=data.get("kind", "status"))

    def __reduce__(self):  # keep it picklable across processes
        return (LLMRequestError.from_dict, (self.to_dict(),))


@dataclass
class Usage:
    """Running totals over a client's life (thread-safe).

    requests: logical requests (calls to `complete`); retries: extra HTTP attempts beyond the first;
    failures: requests that ended in `LLMRequestError`; prompt/completion tokens and cost count only
    replies whose server reported usage (`unreported` counts the others).
    """

    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    requests: int = 0
    retries: int = 0
    failures: int = 0
    unreported: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_reply(self, reply: ChatReply) -> None:
        with self._lock:
            self.requests += 1
            self.retries += max(reply.attempts - 1, 0)
            if reply.prompt_tokens is None and reply.completion_tokens is None:
                self.unreported += 1
                return
            prompt = reply.prompt_tokens or 0
            completion = reply.completion_tokens or 0
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            self.cost += prompt / 1000.0 * self.price_per_1k_prompt + completion / 1000.0 * self.price_per_1k_completion

    def add_failure(self, error: LLMRequestError) -> None:
        with self._lock:
            self.requests += 1
            self.failures += 1
            self.retries += max(error.attempts - 1, 0)

    def as_dict(self) -> dict[str, float]:
        """Plain numbers for logging (prices left out)."""
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "failures": self.failures,
                "unreported_usage": self.unreported,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost": self.cost,
            }


@runtime_checkable
class ChatClient(Protocol):
    """What the reward search needs from a model."""

    usage: Usage

    def complete(self, messages: Messages, *, seed: int | None = None) -> ChatReply:
        """One reply; raises `LLMRequestError` when the request fails for good."""
        ...

    def complete_many(self, messages: Messages, k: int,
                      seeds: Sequence[int | None] | None = None) -> list[ChatReply | LLMRequestError]:
        """K candidates as K separate requests; a failed one is returned as its error."""
        ...


def complete_concurrently(
    complete: Callable[..., ChatReply],
    messages: Messages,
    k: int,
    seeds: Sequence[int | None] | None,
    max_concurrency: int,
) -> list[ChatReply | LLMRequestError]:
    """Run `complete(messages, seed=seeds[i])` for i < k on up to `max_concurrency` threads.

    Results come back in candidate order. An `LLMRequestError` is returned in its slot; any other
    exception (a bug, not a failed request) propagates.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    seed_list: list[int | None] = [None] * k if seeds is None else list(seeds)
    if len(seed_list) != k:
        raise ValueError(f"got {len(seed_list)} seeds for k={k} candidates")

    def one(seed: int | None) -> ChatReply | LLMRequestError:
        try:
            return complete(messages, seed=seed)
        except LLMRequestError as err:
            return err

    workers = max(1, min(int(max_concurrency), k))
    if workers == 1:
        return [one(s) for s in seed_list]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm") as pool:
        return list(pool.map(one, seed_list))
