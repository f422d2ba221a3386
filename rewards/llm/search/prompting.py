"""Prompt templates rendered into chat messages (``[{"role": ..., "content": ...}, ...]``).

Templates are plain text files using :class:`string.Template` placeholders (``$name`` or ``${name}``;
``$$`` is a literal dollar sign), so the braces of Python code need no escaping. The defaults live in
``rewards/llm/search/prompts/``:

* ``system.txt``      the role (reward engineer) and the rules for the code; placeholder ``$signature``;
* ``initial.txt``     the first request: ``$env_context``, ``$task_description``;
* ``reflection.txt``  the Eureka-style reward reflection: ``$reflection`` (see :func:`format_reflection`)
  and ``$feedback`` (``feedback.txt`` rendered, or empty);
* ``feedback.txt``    a person's feedback on the trained behaviour (Text2Reward): ``$feedback``;
* ``preference.txt``  the in-context preference request (candidates ranked best to worst, no numbers):
  ``$ranking`` (see :func:`format_ranking`) and ``$feedback``.

Every template may use any of ``$env_id``, ``$env_context``, ``$task_description``, ``$signature`` in
addition to its own names. To edit the prompts, copy the folder and pass ``templates_dir``; a file
missing there falls back to the default one. A placeholder without a value raises
:class:`TemplateError` naming the file and the placeholder.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rewards.llm.context import EnvContext
from rewards.llm.sandbox import DEFAULT_MAX_COMPONENTS, sanitize_component_name
from rewards.llm.search.formatting import format_number, python_fence

__all__ = [
    "DEFAULT_TEMPLATES_DIR",
    "TemplateError",
    "format_ranking",
    "format_reflection",
    "initial_messages",
    "preference_messages",
    "reflection_messages",
    "render_template",
]

#: folder of the default templates
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parent / "prompts"

Message = dict[str, str]


class TemplateError(ValueError):
    """A prompt template could not be found or rendered."""


# ------------------------------------------------------------------------------------------ templates
def _template_path(name: str, templates_dir: str | Path | None) -> Path:
    if templates_dir is not None:
        folder = Path(templates_dir).expanduser()
        if not folder.is_dir():
            raise TemplateError(f"templates_dir {str(folder)!r} is not a directory")
        path = folder / name
        if path.is_file():
            return path
    path = DEFAULT_TEMPLATES_DIR / name
    if not path.is_file():
        raise TemplateError(f"prompt template {name!r} not found in {str(DEFAULT_TEMPLATES_DIR)!r}")
    return path


def render_template(name: str, values: Mapping[str, Any], templates_dir: str | Path | None = None) -> str:
    """Render template file ``name`` (e.g. ``"initial.txt"``) with ``values``.

    Raises:
        TemplateError: the file is missing, a ``$placeholder`` has no value (the message names both), or
            the template has a malformed ``$`` (write ``$$`` for a literal dollar sign).
    """
    path = _template_path(name, templates_dir)
    text = path.read_text(encoding="utf-8")
    try:
        return string.Template(text).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        known = ", ".join(f"${k}" for k in sorted(values))
        raise TemplateError(
            f"prompt template {str(path)!r} uses placeholder ${exc.args[0]} which has no value here "
            f"(available: {known})"
        ) from None
    except ValueError as exc:
        raise TemplateError(f"prompt template {str(path)!r}: {exc} (write $$ for a literal '$')") from None


def _common_values(ctx: EnvContext, task_description: str) -> dict[str, str]:
    return {
        "env_id": ctx.env_id,
        "env_context": ctx.text,
        "task_description": task_description.strip() or "Solve the task described above.",
        "signature": ctx.signature,
    }


def _feedback_text(values: Mapping[str, str], feedback: str | None, templates_dir: str | Path | None) -> str:
    if feedback is None or not feedback.strip():
        return ""
    return render_template("feedback.txt", {**values, "feedback": feedback.strip()}, templates_dir)


# ------------------------------------------------------------------------------------------- messages
def initial_messages(ctx: EnvContext, task_description: str,
                     templates_dir: str | Path | None = None) -> list[Message]:
    """System prompt and first request: ``[system, user]``.

    Args:
        ctx: the environment description (:func:`rewards.llm.context.describe_env`).
        task_description: what the reward should make the agent do, in words.
        templates_dir: folder with the user's own templates (optional).
    """
    values = _common_values(ctx, task_description)
    return [
        {"role": "system", "content": render_template("system.txt", values, templates_dir)},
        {"role": "user", "content": render_template("initial.txt", values, templates_dir)},
    ]


def reflection_messages(ctx: EnvContext, task_description: str, best_code: str, reflection_text: str,
                        feedback: str | None = None,
                        templates_dir: str | Path | None = None) -> list[Message]:
    """The next-iteration request: ``[system, user (initial), assistant (best code), user (reflection)]``.

    Args:
        best_code: the best reward code so far (shown as the model's previous answer).
        reflection_text: training statistics as text (:func:`format_reflection`).
        feedback: a person's comments on the trained behaviour, or ``None``.
    """
    values = _common_values(ctx, task_description)
    msgs = initial_messages(ctx, task_description, templates_dir)
    msgs.append({"role": "assistant", "content": python_fence(best_code)})
    content = render_template(
        "reflection.txt",
        {**values, "reflection": reflection_text.strip(), "feedback": _feedback_text(values, feedback, templates_dir)},
        templates_dir,
    )
    msgs.append({"role": "user", "content": content})
    return msgs


def preference_messages(ctx: EnvContext, task_description: str, ranked_codes: Sequence[str],
                        feedback: str | None = None,
                        templates_dir: str | Path | None = None) -> list[Message]:
    """In-context preference request: ``[system, user]`` where the user message holds the initial request
    followed by the candidates ranked best to worst (:func:`format_ranking`), without any numbers."""
    values = _common_values(ctx, task_description)
    msgs = initial_messages(ctx, task_description, templates_dir)
    pref = render_template(
        "preference.txt",
        {**values, "ranking": format_ranking(ranked_codes),
         "feedback": _feedback_text(values, feedback, templates_dir)},
        templates_dir,
    )
    msgs[1] = {"role": "user", "content": msgs[1]["content"].rstrip() + "\n\n" + pref}
    return msgs


# ----------------------------------------------------------------------------------------- formatting
def _num(x: Any) -> str:
    return format_number(x, ".3g")


def _step(s: Any) -> str:
    s = float(s)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(s) >= div:
            return f"{s / div:.3g}{suffix}"
    return f"{s:.0f}" if s == int(s) else f"{s:.3g}"


def _pick(n: int, max_points: int) -> list[int]:
    """About ``max_points`` evenly spread indices into a series of length ``n``, first and last kept."""
    if n <= max_points:
        return list(range(n))
    return sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})


def format_reflection(stats: Mapping[str, Any], max_points: int = 10, include_code: bool = False,
                      max_error_chars: int = 1500, max_components: int = DEFAULT_MAX_COMPONENTS) -> str:
    """Training statistics of one reward candidate as compact text for the reflection prompt.

    Args:
        stats: ``{"code": str, "components": {name: [(step, mean, min, max), ...]},
            "success": [(step, rate), ...], "error": str | None}``; optional ``"fitness"`` (float) and
            ``"episode_length"`` (``[(step, mean length), ...]``). Missing keys are skipped.
        max_points: series longer than this are thinned to about this many evenly spread points.
        include_code: also show ``stats["code"]`` (for candidates other than the one shown as the
            model's previous answer).
        max_error_chars: an error text is cut to its last this-many characters.
        max_components: at most this many components are shown (a note counts the rest); their
            names are sanitised (:func:`~rewards.llm.sandbox.sanitize_component_name`: ``[A-Za-z0-9_.-]``,
            64 characters) so no name can inject text into the prompt.

    Returns:
        text such as ``success rate at steps 0, 10k, ...: 0, 0.05, ...`` and one line per component.
    """
    lines: list[str] = []
    if include_code and stats.get("code"):
        lines.append(python_fence(str(stats["code"])))
    error = stats.get("error")
    if error:
        err = str(error).strip()
        if len(err) > max_error_chars:
            err = "..." + err[-max_error_chars:]
        lines.append("This reward code failed, so no policy was trained with it. Error:\n" + err)
        return "\n".join(lines)
    if stats.get("fitness") is not None:
        lines.append(f"fitness (the task score used to compare candidates): {_num(stats['fitness'])}")

    common_steps: list[str] | None = None
    success = list(stats.get("success") or [])
    if success:
        idx = _pick(len(success), max_points)
        common_steps = [_step(success[i][0]) for i in idx]
        lines.append("training steps: " + ", ".join(common_steps))
        lines.append("success rate: " + ", ".join(_num(success[i][1]) for i in idx))
        best = max(success, key=lambda p: float(p[1]))
        lines.append(f"best success rate: {_num(best[1])} (at step {_step(best[0])})")

    def steps_note(points: list, idx: list[int]) -> str:
        steps = [_step(points[i][0]) for i in idx]
        return "" if steps == common_steps else " at steps " + ", ".join(steps)

    lengths = list(stats.get("episode_length") or [])
    if lengths:
        idx = _pick(len(lengths), max_points)
        lines.append(f"episode length{steps_note(lengths, idx)}: " + ", ".join(_num(lengths[i][1]) for i in idx))

    components: Mapping[str, Sequence] = stats.get("components") or {}
    if components:
        lines.append("reward components (per-step mean / min / max over the rollouts at each point):")
    else:
        lines.append("no reward component statistics were recorded.")
    shown = list(components.items())[:max(0, int(max_components))]
    for raw_name, points in shown:
        name = sanitize_component_name(raw_name)
        points = list(points)
        if not points:
            lines.append(f"  {name}: no values recorded")
            continue
        idx = _pick(len(points), max_points)
        lines.append(
            f"  {name}{steps_note(points, idx)}: mean " + ", ".join(_num(points[i][1]) for i in idx)
            + " | min " + ", ".join(_num(points[i][2]) for i in idx)
            + " | max " + ", ".join(_num(points[i][3]) for i in idx)
        )
    if len(components) > len(shown):
        lines.append(f"  ({len(components) - len(shown)} more components not shown)")
    return "\n".join(lines)


def format_ranking(ranked_codes: Sequence[str]) -> str:
    """Candidates' code, best first, as numbered sections (``Rank 1 (best)`` ... ``Rank K (worst)``)."""
    if not ranked_codes:
        raise ValueError("format_ranking needs at least one candidate")
    k = len(ranked_codes)
    parts = []
    for i, code in enumerate(ranked_codes, 1):
        label = " (best)" if i == 1 and k > 1 else (" (worst)" if i == k and k > 1 else "")
        parts.append(f"### Rank {i}{label}\n" + python_fence(code))
    return "\n\n".join(parts)
