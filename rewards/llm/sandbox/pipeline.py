"""Reward code in, callable out: check, validate in the child, compile (the sandbox's one-call entry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .child import validate_in_subprocess
from .policy import DEFAULT_MAX_CHARS, DEFAULT_MAX_COMPONENTS, check_code
from .runtime import RewardFunction, ValidationReport
from .states import sample_states

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rlcore.env import BatchedEnv


def compile_reward(code: str, env: BatchedEnv | None, *, validate: bool = True, check_outputs: bool = True,
                   num_steps: int = 8, seed: int = 0, max_chars: int = DEFAULT_MAX_CHARS,
                   max_components: int = DEFAULT_MAX_COMPONENTS, **limits: Any) -> RewardFunction:
    """Check, validate and compile reward code into a :class:`RewardFunction`.

    With ``validate`` (default), runs :func:`validate_in_subprocess` on :func:`sample_states` of
    ``env`` (which resets the env); ``limits`` are its ``timeout_s``, ``cpu_seconds``,
    ``memory_mb``; ``max_components`` caps the components one call may return (validation and every
    later call). Raises :class:`RewardCodeError` (``.reason`` for the model) when the code is
    refused or fails. ``validate=False`` skips the subprocess (no time/memory limits: trusted code
    or tests only) and then ``env`` may be ``None``.
    """
    check_code(code, max_chars)
    report: ValidationReport | None = None
    if validate:
        if env is None:
            raise ValueError("compile_reward(validate=True) needs an env to sample states from")
        report = validate_in_subprocess(code, sample_states(env, num_steps=num_steps, seed=seed),
                                        max_chars=max_chars, max_components=max_components,
                                        raise_on_error=True, **limits)
    return RewardFunction(code, check_outputs=check_outputs, validation=report, max_chars=max_chars,
                          max_components=max_components)

