"""Thinking never reaches the answer: every tag, split anywhere across stream chunks."""

import pytest

from tzurot.inference.thinking import TAGS, ThinkingFilter, split_thinking


def stream(pieces: list[str]) -> tuple[str, str]:
    thinking = ThinkingFilter()
    visible = "".join(thinking.feed(piece) for piece in pieces) + thinking.finish()
    return visible, "|".join(thinking.reasoning)


@pytest.mark.parametrize("tag", TAGS)
def test_every_tag_is_taken_out(tag: str) -> None:
    text = f"<{tag}>secret plan</{tag}>Hello there."
    assert split_thinking(text) == ("Hello there.", "secret plan")


def test_tags_are_case_insensitive_and_may_carry_attributes() -> None:
    assert split_thinking('<Thinking type="deep">hmm</THINKING> Hi') == ("Hi", "hmm")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11])
def test_a_tag_split_across_chunks_never_leaks(size: int) -> None:
    text = "Before <think>private thoughts</think> after <ant_thinking>more</ant_thinking>end"
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    visible, reasoning = stream(pieces)
    assert visible == "Before  after end"
    assert reasoning == "private thoughts|more"


def test_a_lone_angle_bracket_is_text() -> None:
    assert stream(["a < b and ", "<b>bold</b>", " 3<4"]) == ("a < b and <b>bold</b> 3<4", "")


def test_an_unclosed_thought_stays_reasoning() -> None:
    assert stream(["Hi <think>still going"]) == ("Hi ", "still going")


def test_a_closing_tag_without_its_opening_one() -> None:
    # chat templates that open <think> in the prompt: the model starts inside the thought
    assert split_thinking("I should greet.</think>Hello!") == ("Hello!", "I should greet.")


def test_only_thinking_is_an_empty_answer() -> None:
    assert split_thinking("<think>nothing to say</think>  ") == ("", "nothing to say")
