"""extract_code: which block of a chat reply becomes the reward source."""

import pytest

from rewards.llm.extract import NoCodeError, extract_code, find_code_blocks, strip_think

REWARD = (
    "def compute_reward(state, action, next_state):\n"
    "    r = (next_state['agent_pos'][:, 0] == 1).float()\n"
    "    return r, {'at_one': r}\n"
)
HELPER = "def _dist(a, b):\n    return (a - b).abs().sum(-1).float()\n"


def fenced(code: str, tag: str = "python", fence: str = "```") -> str:
    return f"{fence}{tag}\n{code}{fence}\n"


def test_single_python_block():
    reply = "Here is the reward.\n\n" + fenced(REWARD) + "\nIt pays reaching x=1."
    assert extract_code(reply) == REWARD


@pytest.mark.parametrize("tag", ["py", "", "python3", "Python"])
def test_py_and_plain_fences(tag):
    assert extract_code("Code:\n" + fenced(REWARD, tag)) == REWARD


def test_tilde_fence_and_longer_backtick_fence():
    assert extract_code(fenced(REWARD, "python", "~~~")) == REWARD
    code_with_inner_fence = REWARD + "# a note: ``` is not a fence here\n"
    assert extract_code(fenced(code_with_inner_fence, "python", "````")) == code_with_inner_fence


def test_think_section_is_removed():
    thinking = "<think>\nMaybe:\n```python\ndef compute_reward(s, a, n):\n    return 0\n```\n</think>\n"
    reply = thinking + "Final answer:\n" + fenced(REWARD)
    assert extract_code(reply) == REWARD
    # code inside the reasoning alone is not an answer
    with pytest.raises(NoCodeError, match="no fenced python code block"):
        extract_code(thinking + "I could not decide.")


def test_unterminated_think_at_start_is_all_reasoning():
    reply = "<think>\nLet me write\n```python\n" + REWARD + "```\nhmm, but the door..."
    assert strip_think(reply) == ""
    with pytest.raises(NoCodeError, match="no fenced python code block"):
        extract_code(reply)


def test_closing_think_without_opening_tag():
    reply = "reasoning ```python\ndef compute_reward(): pass\n```\n</think>\n" + fenced(REWARD)
    assert extract_code(reply) == REWARD


def test_last_block_wins():
    first = REWARD.replace("== 1", "== 2")
    reply = "Draft:\n" + fenced(first) + "Improved version:\n" + fenced(REWARD)
    assert extract_code(reply) == REWARD


def test_last_block_without_compute_reward_falls_back_to_last_defining_block():
    old = REWARD.replace("== 1", "== 3")
    usage = "r, parts = compute_reward(s, a, s2)\nprint(r)\n"
    reply = fenced(old) + fenced(REWARD) + "Example usage:\n" + fenced(usage)
    assert extract_code(reply) == REWARD


def test_helpers_before_compute_reward_are_kept():
    code = "import torch\n\n" + HELPER + "\n\n" + REWARD
    out = extract_code("```python\n" + code + "```")
    assert out == code
    assert out.index("def _dist") < out.index("def compute_reward")


def test_unterminated_fence_at_end_of_reply():
    reply = "Sure.\n```python\n" + REWARD + "    # trailing comment"
    out = extract_code(reply)
    assert out.startswith("def compute_reward(")
    assert out.rstrip().endswith("# trailing comment")
    assert find_code_blocks(reply)[-1].closed is False


def test_fence_glued_to_last_line():
    reply = "```python\n" + REWARD.rstrip("\n") + "```"
    assert extract_code(reply) == REWARD


def test_indented_block_inside_list_item_is_dedented():
    indented = "".join("   " + line + "\n" for line in REWARD.splitlines())
    reply = "1. The code:\n   ```python\n" + indented + "   ```\n"
    assert extract_code(reply) == REWARD


def test_non_python_blocks_are_ignored():
    reply = fenced(REWARD) + "Install with:\n" + fenced("pip install torch\n", "bash") + fenced('{"a": 1}\n', "json")
    assert extract_code(reply) == REWARD


def test_no_block_at_all():
    with pytest.raises(NoCodeError, match="reply has no fenced python code block") as info:
        extract_code("I think the agent should get +1 at the goal.")
    assert info.value.reason == "reply has no fenced python code block"
    assert isinstance(info.value, ValueError)


def test_only_other_language_blocks():
    with pytest.raises(NoCodeError, match="no fenced python code block"):
        extract_code(fenced("echo hi\n", "bash"))


def test_python_blocks_without_compute_reward():
    with pytest.raises(NoCodeError, match="no block defines compute_reward"):
        extract_code(fenced(HELPER) + fenced("def reward(s):\n    return 0\n"))


def test_nested_or_method_compute_reward_does_not_count():
    code = "class R:\n    def compute_reward(self, s, a, n):\n        return 0\n"
    with pytest.raises(NoCodeError, match="no block defines compute_reward"):
        extract_code(fenced(code))


def test_bare_code_without_fences_is_accepted_when_valid():
    bare = HELPER + "\n" + REWARD
    assert extract_code(bare) == bare
    assert extract_code("\n\n" + REWARD + "\n\n") == REWARD


def test_bare_prose_plus_code_without_fences_is_rejected():
    with pytest.raises(NoCodeError, match="no fenced python code block"):
        extract_code("Here is my reward:\n" + REWARD)


def test_syntax_error_block_is_still_returned():
    broken = "def compute_reward(state, action, next_state):\n    return (\n"
    assert extract_code(fenced(broken)) == broken
