"""Discord's 2000-character limit: where answers are cut."""

import json
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from tzurot.bot.splitting import DISCORD_LIMIT, split_message


def test_short_text_is_one_message() -> None:
    assert split_message("hello") == ["hello"]


def test_empty_text_is_no_message() -> None:
    assert split_message("   ") == []


def test_5000_characters_of_paragraphs_become_three_messages_on_paragraph_breaks() -> None:
    paragraph = ("word " * 199 + "end.").strip()  # 1000 characters
    text = "\n\n".join([paragraph] * 5)
    pieces = split_message(text)
    assert len(pieces) == 3
    assert all(len(p) <= DISCORD_LIMIT for p in pieces)
    assert all(p.endswith("end.") for p in pieces)


def test_prefers_sentence_boundary_over_word() -> None:
    text = "A" * 1500 + ". " + "b " * 400
    first = split_message(text)[0]
    assert first.endswith(".")


def test_code_block_is_not_split_when_it_fits() -> None:
    code = "```python\n" + "x = 1\n" * 100 + "```"
    text = "intro " * 300 + "\n" + code
    pieces = split_message(text)
    assert any(p.startswith("```python") and p.endswith("```") for p in pieces)


@given(st.text(min_size=0, max_size=9000))
def test_pieces_fit_and_keep_every_non_space_character(text: str) -> None:
    pieces = split_message(text)
    assert all(0 < len(p) <= DISCORD_LIMIT for p in pieces)
    assert "".join(pieces).split() == text.split() or "".join("".join(pieces).split()) == "".join(
        text.split()
    )


def _split_in_a_child(text: str, seconds: float = 20.0) -> list[str]:
    """`split_message(text)` in a child process, killed (the test failing, not hanging or
    eating memory) if it does not finish in time."""
    script = (
        "import json, sys\n"
        "from tzurot.bot.splitting import split_message\n"
        "print(json.dumps(split_message(sys.stdin.read())))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            input=text,
            capture_output=True,
            text=True,
            timeout=seconds,
            check=True,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError("split_message did not finish") from None
    pieces: list[str] = json.loads(done.stdout)
    return pieces


def test_a_fence_with_a_very_long_language_word_still_ends() -> None:
    """A fence line of ~600 characters and one long line after it: the only newline in the
    window is after the fence, so reopening the fence in each next piece never shortened
    the text (the bot froze, and froze again on the restart's repair)."""
    text = "```" + "x" * 600 + "\n" + "y" * 2500
    pieces = _split_in_a_child(text)
    assert all(0 < len(p) <= DISCORD_LIMIT for p in pieces)
    assert "".join("".join(pieces).replace("```", "").split()).count("y") == 2500


fence_heavy = st.lists(
    st.sampled_from(["```", "```python", "```" + "k" * 700, "\n", " ", "a" * 900, "b. "]),
    max_size=20,
).map("".join)


@given(fence_heavy)
def test_fenced_text_is_split_into_pieces_that_fit(text: str) -> None:
    """Each piece of the loop shortens what is left (a plain cut where reopening a fence
    would not), so this ends on any input."""
    pieces = split_message(text)
    assert all(0 < len(p) <= DISCORD_LIMIT for p in pieces)
