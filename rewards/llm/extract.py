"""Pull the reward function source out of a model's chat reply.

A reply is free text: possibly a ``<think>...</think>`` reasoning section, prose, and one or more
fenced code blocks. `extract_code` returns the source of the block that holds ``compute_reward``:

1. ``<think>...</think>`` sections are removed (also a reasoning prefix that only has the closing
   tag, and an unterminated ``<think>`` at the start, which means the reply never left its
   reasoning).
2. Fenced blocks are found line by line (backtick or tilde fences of length >= 3). Blocks tagged
   ``python``, ``py``, ``python3`` or untagged count as python; other languages (``bash``,
   ``json`` ...) are ignored. A fence left open at the end of the reply (the model hit its token
   limit, or forgot it) closes at the end of the text.
3. The LAST python block is taken. When it does not define ``compute_reward`` (e.g. a trailing
   usage example) but an earlier block does, the last block that defines it is taken instead.
   The whole block is kept, so helper functions defined before ``compute_reward`` come along.
4. A reply without any fence whose whole text is valid python defining ``compute_reward`` is
   accepted as code.

The block is returned as written (dedented); syntax errors are left for the compiler to report.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

__all__ = ["NoCodeError", "extract_code", "strip_think", "find_code_blocks", "CodeBlock"]

PYTHON_TAGS = frozenset({"", "python", "py", "python3", "py3"})

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_DEFINES_REWARD = re.compile(r"^def[ \t]+compute_reward[ \t]*\(", re.MULTILINE)


class NoCodeError(ValueError):
    """The reply holds no usable reward code; `reason` says why in a few words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: `lang` is the lower-cased first word of the info string ("" if none)."""

    lang: str
    code: str
    closed: bool

    @property
    def is_python(self) -> bool:
        return self.lang in PYTHON_TAGS

    @property
    def defines_reward(self) -> bool:
        return defines_compute_reward(self.code)


def strip_think(reply: str) -> str:
    """Remove reasoning sections.

    Complete ``<think>...</think>`` pairs are cut anywhere. A ``</think>`` with no opening tag
    before it (some servers drop the opening tag) cuts everything up to and including it. A reply
    that starts with a ``<think>`` that is never closed is all reasoning, so nothing is left.
    """
    text = _THINK_BLOCK.sub("", reply)
    close = _THINK_CLOSE.search(text)
    if close is not None:
        text = text[close.end():]
    if _THINK_OPEN.match(text.lstrip()):
        return ""
    return text


def find_code_blocks(text: str) -> list[CodeBlock]:
    """All fenced blocks of `text` in order; a fence still open at the end closes there."""
    blocks: list[CodeBlock] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence = opening.group("fence")
        info = opening.group("info").strip()
        lang = info.split()[0].lower() if info else ""
        closing = re.compile(r"^[ \t]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*$")
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            if closing.match(lines[i]):
                closed = True
                i += 1
                break
            body.append(lines[i])
            i += 1
        if not closed and body and body[-1].rstrip().endswith(fence):
            # "    return r, parts```" on the last line of an otherwise unterminated reply
            body[-1] = body[-1].rstrip()[: -len(fence)]
        code = textwrap.dedent("\n".join(body)).strip("\n")
        blocks.append(CodeBlock(lang=lang, code=code + "\n" if code else "", closed=closed))
    return blocks


def defines_compute_reward(code: str) -> bool:
    """True when `code` has a top-level ``def compute_reward(`` (checked textually, so code with a
    syntax error elsewhere still counts: the compiler reports the error, not the extractor)."""
    return _DEFINES_REWARD.search(code) is not None


def _whole_text_is_reward_code(text: str) -> bool:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    return any(isinstance(node, ast.FunctionDef) and node.name == "compute_reward" for node in tree.body)


def extract_code(reply: str) -> str:
    """Source of the reward function in a chat reply (see the module docstring for the rules).

    Raises:
        NoCodeError: "reply has no fenced python code block" or "no block defines compute_reward".
    """
    text = strip_think(reply)
    blocks = find_code_blocks(text)
    python_blocks = [b for b in blocks if b.is_python and b.code.strip()]
    if not python_blocks:
        if not blocks:
            bare = textwrap.dedent(text).strip("\n")
            if _whole_text_is_reward_code(bare):
                return bare + "\n"
        raise NoCodeError("reply has no fenced python code block")
    for block in reversed(python_blocks):  # the last block that defines it
        if block.defines_reward:
            return block.code
    raise NoCodeError("no block defines compute_reward")
