"""Discord's 2000-character limit: where answers are cut."""

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
