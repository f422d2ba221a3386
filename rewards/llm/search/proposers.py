"""Proposers for the reward search: a chat model (any OpenAI-compatible endpoint, or a replayed
transcript) or the offline program search. Each turns a :class:`rewards.llm.search.records.ProposalRequest`
into K replies (text with a fenced ``compute_reward`` program), one per candidate.

The chat proposer builds the Eureka-style conversation from the prompt templates
(:mod:`rewards.llm.search.prompting`): the first iteration sends the env context and the task; later ones
send the best reward so far as the model's previous answer, its reward reflection, the full error
text of every candidate of the last iteration that failed, and optional human feedback; in
preference mode the ranking of the last iteration's candidates replaces the numbers. The K
candidates are K separate requests (distinct seeds), since several local servers ignore ``n > 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from rewards.llm.search.client import make_client
from rewards.llm.search.offline import OfflineProposer
from rewards.llm.search.prompting import (format_reflection, initial_messages, preference_messages,
                                          reflection_messages, render_template)
from rewards.llm.search.records import Candidate, ProposalRequest


def _failures_text(results: list[Candidate]) -> str:
    """Each failed candidate of the last iteration with its code (if any) and full error text."""
    parts = []
    for r in results:
        if r.ok:
            continue
        parts.append(f"Candidate {r.index} of the last iteration failed at the {r.stage} stage:\n"
                     + format_reflection({"code": r.code, "error": r.error or "unknown error"},
                                         include_code=bool(r.code), max_error_chars=4000))
    return "\n\n".join(parts)


def chat_messages(request: ProposalRequest, templates_dir: Optional[str] = None) -> list[dict[str, str]]:
    """The conversation for one iteration (see the module docstring)."""
    failures = _failures_text(request.results)
    if request.ranking:
        msgs = preference_messages(request.ctx, request.task, request.ranking, request.feedback, templates_dir)
    elif request.best is not None:
        best = request.best
        stats = best.stats.to_dict() if best.stats is not None else {}
        text = format_reflection({**stats, "fitness": best.fitness, "code": best.code})
        msgs = reflection_messages(request.ctx, request.task, str(best.code), text, request.feedback, templates_dir)
    else:
        msgs = initial_messages(request.ctx, request.task, templates_dir)
        if request.feedback and request.feedback.strip():
            # no candidate trained yet: the person's feedback still reaches the model
            values = {"env_id": request.ctx.env_id, "env_context": request.ctx.text, "signature": request.ctx.signature,
                      "task_description": request.task, "feedback": request.feedback.strip()}
            msgs[-1] = {**msgs[-1], "content": msgs[-1]["content"].rstrip() + "\n\n"
                        + render_template("feedback.txt", values, templates_dir).strip()}
    if failures and request.iteration > 0:
        msgs[-1] = {**msgs[-1], "content": msgs[-1]["content"].rstrip() + "\n\n" + failures}
    return msgs


class ReplyText(str):
    """A reply's text that remembers how it ended: ``finish_reason`` and the ``max_tokens`` it was asked with."""

    finish_reason: Optional[str] = None
    max_tokens: Optional[int] = None

    def __new__(cls, text: str, finish_reason: Optional[str] = None, max_tokens: Optional[int] = None) -> "ReplyText":
        obj = super().__new__(cls, text)
        obj.finish_reason, obj.max_tokens = finish_reason, max_tokens
        return obj


def cut_off_message(reply: Any) -> Optional[str]:
    """``"the reply was cut off at max_tokens=N (finish_reason=length)"`` for a cut-off reply, else None."""
    if getattr(reply, "finish_reason", None) != "length":
        return None
    limit = getattr(reply, "max_tokens", None)
    at = f"max_tokens={limit}" if limit is not None else "the server's token limit"
    return f"the reply was cut off at {at} (finish_reason=length)"


class ChatProposer:
    """Candidates from a chat client (:class:`rewards.llm.search.chat.ChatClient`), K requests per iteration.

    Replies come back as :class:`ReplyText` (their ``finish_reason`` kept, so the loop can name a
    reply cut off at ``max_tokens``). `preflight()` runs the client's endpoint check unless
    ``preflight=False`` (``llm.preflight=false``) or the client has none (a replayed transcript).
    """

    def __init__(self, client: Any, templates_dir: Optional[str] = None, name: str = "chat",
                 preflight: bool = True) -> None:
        self.client, self.templates_dir, self.name = client, templates_dir, name
        self.check_endpoint = bool(preflight)

    def propose(self, request: ProposalRequest) -> list[Any]:
        messages = chat_messages(request, self.templates_dir)
        seeds = [request.seed + j for j in range(request.k)]
        replies = self.client.complete_many(messages, request.k, seeds)
        limit = getattr(self.client, "max_tokens", getattr(getattr(self.client, "inner", None), "max_tokens", None))
        return [r if isinstance(r, BaseException) else ReplyText(r.text, r.finish_reason, limit) for r in replies]

    def preflight(self) -> None:
        """Check the endpoint and model once; raises :class:`~rewards.llm.search.chat.LLMRequestError`."""
        check = getattr(self.client, "preflight", None)
        if self.check_endpoint and callable(check):
            check()

    def usage(self) -> dict[str, float]:
        usage = getattr(self.client, "usage", None)
        return usage.as_dict() if usage is not None else {}


class OfflineSearchProposer:
    """The offline program search (:class:`rewards.llm.search.offline.OfflineProposer`) behind the same interface.

    ``kwargs`` are fields of :class:`~rewards.llm.search.offline.OfflineConfig`.
    """

    name = "offline"

    def __init__(self, **kwargs: Any) -> None:
        self.inner = OfflineProposer(**kwargs)

    def propose(self, request: ProposalRequest) -> list[Any]:
        reflection = None
        if request.iteration > 0:
            # the last iteration's candidates, and the best so far when it is from an earlier one
            shown = list(request.results)
            if request.best is not None and all(r.code != request.best.code for r in shown):
                shown.append(request.best)
            reflection = [{"code": r.code, "fitness": r.fitness, "error": r.error,
                           "components": r.stats.components if r.stats is not None else {},
                           "success": r.stats.success if r.stats is not None else []} for r in shown]
        return self.inner.propose(request.ctx, request.k, rng_seed=request.seed, reflection=reflection)

    def usage(self) -> dict[str, float]:
        return {}


def make_proposer(llm_cfg: Any, run_dir: Path, templates_dir: Optional[str] = None) -> Any:
    """The proposer for an ``llm`` config: ``offline``, ``openai`` (recorded to ``transcript.jsonl``) or ``replay``.

    ``llm.preflight`` (default true) applies to ``openai`` only: offline and replay need no endpoint.
    """
    cfg = OmegaConf.to_container(llm_cfg, resolve=True) if OmegaConf.is_config(llm_cfg) else dict(llm_cfg)
    preflight = bool(cfg.pop("preflight", True))
    name = cfg.get("name")
    if name == "offline":
        return OfflineSearchProposer(**{k: v for k, v in cfg.items() if k != "name"})
    if name == "openai":
        cfg.setdefault("record_transcript", None)
        if not cfg["record_transcript"]:
            cfg["record_transcript"] = str(Path(run_dir) / "transcript.jsonl")
    return ChatProposer(make_client(cfg), templates_dir, name=str(name), preflight=preflight and name == "openai")
