"""The lines under an answer (answer_notes) and its reasoning's message (reasoning): within
Discord's 2000 characters, the spoiler never ended early by the reasoning's own pipes."""

from __future__ import annotations

import re

import pytest

from tzurot.bot.answer_notes import CUT_OFF_LINE, with_notes
from tzurot.bot.reasoning import CUT_MARK, REASONING_HEADER, reasoning_message
from tzurot.bot.splitting import DISCORD_LIMIT

SPOILER = re.compile(r"\|\|([\s\S]+?)\|\|")
"""Discord's spoiler: from `||` to the first `||` after it."""


def spoiler_of(message: str) -> str:
    """What the first spoiler of `message` hides; asserts it ends where the message puts it."""
    header, _, rest = message.partition("\n")
    assert header == REASONING_HEADER
    found = SPOILER.match(rest)
    assert found is not None
    assert rest[found.end() :] in {"", CUT_MARK}, "the spoiler ended early"
    return found.group(1)


@pytest.mark.parametrize(
    ("content", "finish_reason", "footer", "posted"),
    [
        ("Hi.", "stop", "", "Hi."),
        ("Hi.", "stop", "or/m", "Hi.\n-# or/m"),
        ("Hi", "length", "", f"Hi\n{CUT_OFF_LINE}"),
        ("Hi", "length", "or/m", f"Hi\n{CUT_OFF_LINE}\n-# or/m"),
        # A code block the cut left open is closed, or the lines would show as code.
        ("```py\nx = (", "length", "", f"```py\nx = (\n```\n{CUT_OFF_LINE}"),
        ("```py\nx = 1\n```", "length", "", f"```py\nx = 1\n```\n{CUT_OFF_LINE}"),
    ],
)
def test_notes_go_under_the_answer(
    content: str, finish_reason: str, footer: str, posted: str
) -> None:
    assert with_notes(content, finish_reason=finish_reason, footer=footer) == posted


@pytest.mark.parametrize(
    "reasoning",
    ["a || b", "|starts", "ends|", "|||", "ends with a backslash \\", "```\nx || y\n```"],
)
def test_the_reasonings_pipes_never_end_the_spoiler(reasoning: str) -> None:
    hidden = spoiler_of(reasoning_message(reasoning))
    assert hidden.replace("\u200b", "") == reasoning.strip()


def test_no_reasoning_no_message() -> None:
    assert reasoning_message("  \n ") == ""


@pytest.mark.parametrize(
    "reasoning",
    [
        "word " * 1000,
        "|" * 3000,
        "```py\n" + "x = 1\n" * 800,  # cut inside a code block: closed
        "a" * (DISCORD_LIMIT - len(REASONING_HEADER) - 4),  # one over
    ],
)
def test_a_long_reasoning_is_cut_to_one_message_and_says_so(reasoning: str) -> None:
    message = reasoning_message(reasoning)
    assert len(message) <= DISCORD_LIMIT
    assert message.endswith(CUT_MARK)
    hidden = spoiler_of(message)
    assert hidden.rstrip("`\n").endswith("…")
    assert hidden.count("```") % 2 == 0


def test_a_reasoning_that_fits_exactly_is_whole() -> None:
    reasoning = "a" * (DISCORD_LIMIT - len(REASONING_HEADER) - 5)
    assert reasoning_message(reasoning) == f"{REASONING_HEADER}\n||{reasoning}||"
    assert len(reasoning_message(reasoning)) == DISCORD_LIMIT
