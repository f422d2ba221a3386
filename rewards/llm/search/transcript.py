"""Record every model exchange to a JSON-lines file, and replay a recorded run without a model.

Each finished request is one line, written and flushed as it completes (so a killed run keeps
every exchange it finished)::

    {"index": 3, "time": 1712345678.9, "key": "<sha256>", "seed": 7,
     "messages": [...], "params": {"model": ..., "temperature": ..., ...},
     "reply": {"text": ..., "prompt_tokens": ..., "completion_tokens": ..., "latency_s": ...,
               "model": ..., "attempts": ..., "finish_reason": ...} | null,
     "error": {"message": ..., "status": ..., "attempts": ..., "kind": ..., "model": ...} | null}

The API key is never part of it: params come from the client's `request_params()`, which leaves it
out, and error messages are scrubbed by the client.

`ReplayClient` keys recorded exchanges by a hash of (messages, seed) and serves them back in
recorded order per key, so a replayed search gets, for every request, exactly the reply (or the
error) the recorded run got, whatever order concurrent requests finish in.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewards.llm.search.chat import ChatClient, ChatReply, LLMRequestError, Messages, Usage, complete_concurrently

__all__ = ["Transcript", "RecordingClient", "ReplayClient", "ReplayMismatchError", "request_key", "read_transcript"]


def request_key(messages: Messages, seed: int | None) -> str:
    """sha256 hex of the canonical JSON of (messages, seed): the identity of a request in replay."""
    payload = json.dumps({"messages": messages, "seed": seed}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class Transcript:
    """Append-only JSON-lines log of chat exchanges (thread-safe; flushed per line).

    Args:
        path: file to append to (parent folders are created). An existing file is extended, and
            `index` continues from its line count.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = len(read_transcript(self.path)) if self.path.exists() else 0
        self._file = open(self.path, "a", encoding="utf-8")

    def __repr__(self) -> str:
        return f"Transcript({str(self.path)!r}, entries={self._count})"

    def append(
        self,
        *,
        messages: Messages,
        seed: int | None,
        params: dict[str, Any],
        reply: ChatReply | None = None,
        error: LLMRequestError | None = None,
    ) -> dict[str, Any]:
        """Write one exchange as a line and flush it; returns the written record."""
        with self._lock:
            record = {
                "index": self._count,
                "time": time.time(),
                "key": request_key(messages, seed),
                "seed": seed,
                "messages": messages,
                "params": params,
                "reply": reply.to_dict() if reply is not None else None,
                "error": error.to_dict() if error is not None else None,
            }
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._file.flush()
            self._count += 1
            return record

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self) -> "Transcript":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_transcript(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a transcript file in order. A torn last line (a run killed mid-write) is skipped;
    a bad line elsewhere is an error naming its line number."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"transcript {str(path)!r} does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number == len(lines):
                break
            raise ValueError(f"transcript {str(path)!r} line {number} is not valid JSON: {err}") from None
    return records


class RecordingClient:
    """Wraps a client and writes every `complete` (reply or failure) to a `Transcript`.

    `complete_many` runs the candidates through this wrapper's `complete`, so each candidate is
    recorded under its own seed; concurrency follows the inner client's `max_concurrency`.
    """

    def __init__(self, inner: ChatClient, transcript: Transcript):
        self.inner = inner
        self.transcript = transcript
        self.max_concurrency = int(getattr(inner, "max_concurrency", 1))

    def __repr__(self) -> str:
        return f"RecordingClient({self.inner!r}, {self.transcript!r})"

    @property
    def usage(self) -> Usage:
        return self.inner.usage

    def _params(self) -> dict[str, Any]:
        params = getattr(self.inner, "request_params", None)
        return dict(params()) if callable(params) else {"client": type(self.inner).__name__}

    def complete(self, messages: Messages, *, seed: int | None = None) -> ChatReply:
        try:
            reply = self.inner.complete(messages, seed=seed)
        except LLMRequestError as err:
            self.transcript.append(messages=messages, seed=seed, params=self._params(), error=err)
            raise
        self.transcript.append(messages=messages, seed=seed, params=self._params(), reply=reply)
        return reply

    def complete_many(self, messages: Messages, k: int,
                      seeds: Sequence[int | None] | None = None) -> list[ChatReply | LLMRequestError]:
        return complete_concurrently(self.complete, messages, k, seeds, self.max_concurrency)

    def preflight(self) -> None:
        """The inner client's endpoint check, if it has one (not recorded: it is no exchange)."""
        check = getattr(self.inner, "preflight", None)
        if callable(check):
            check()

    def close(self) -> None:
        self.transcript.close()
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


class ReplayMismatchError(LookupError):
    """A replayed run asked for something the recorded run never asked (or asked fewer times)."""

    def __init__(self, message: str, *, request_index: int, key: str):
        super().__init__(message)
        self.request_index = request_index
        self.key = key


class ReplayClient:
    """Serves a recorded transcript back: no endpoint, no key.

    Request i (counted from 0 across this client's life) with (messages, seed) gets the next unused
    recorded exchange with the same key: the recorded reply, or the recorded `LLMRequestError`
    raised again. Usage is counted from the recorded token counts (cost from the given prices).

    Raises:
        ReplayMismatchError: the request was never recorded, or all its recordings are used up.
    """

    max_concurrency = 1

    def __init__(self, transcript_path: str | os.PathLike[str], *, price_per_1k_prompt: float = 0.0,
                 price_per_1k_completion: float = 0.0):
        self.path = Path(transcript_path)
        records = read_transcript(self.path)
        self._queues: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        for record in records:
            self._queues[record["key"]].append(record)
        self.recorded = len(records)
        self.served = 0
        self._lock = threading.Lock()
        self.usage = Usage(price_per_1k_prompt=price_per_1k_prompt, price_per_1k_completion=price_per_1k_completion)

    def __repr__(self) -> str:
        return f"ReplayClient({str(self.path)!r}, recorded={self.recorded}, served={self.served})"

    def request_params(self) -> dict[str, Any]:
        return {"replay": str(self.path)}

    def complete(self, messages: Messages, *, seed: int | None = None) -> ChatReply:
        key = request_key(messages, seed)
        with self._lock:
            index = self.served
            self.served += 1
            queue = self._queues.get(key)
            record = queue.popleft() if queue else None
        if record is None:
            last_user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
            preview = str(last_user)[:80].replace("\n", " ")
            raise ReplayMismatchError(
                f"replay request {index} (seed={seed}, key={key[:12]}, last user message {preview!r}) was never recorded "
                f"in {str(self.path)!r} ({self.recorded} recorded exchanges) or its recordings are used up",
                request_index=index,
                key=key,
            )
        if record.get("error") is not None:
            error = LLMRequestError.from_dict(record["error"])
            self.usage.add_failure(error)
            raise error
        reply = ChatReply.from_dict(record["reply"])
        self.usage.add_reply(reply)
        return reply

    def complete_many(self, messages: Messages, k: int,
                      seeds: Sequence[int | None] | None = None) -> list[ChatReply | LLMRequestError]:
        """Served one after another: replies are keyed, so order does not change what each gets."""
        return complete_concurrently(self.complete, messages, k, seeds, 1)

    def close(self) -> None:
        """Nothing to release."""
