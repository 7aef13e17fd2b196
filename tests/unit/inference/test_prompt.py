"""Prompt assembly: system message, history, the new message, post-history instructions."""

from datetime import UTC, datetime

from tzurot.inference.domain import Character, HistoryTurn
from tzurot.inference.prompt import (
    build_messages,
    current_date_line,
    estimate_prompt_tokens,
    estimate_tokens,
    system_text,
)

NOW = datetime(2025, 6, 3, 12, 5, tzinfo=UTC)

LILITH = Character(
    id="p-1",
    name="Lilith",
    system_prompt="You are Lilith.",
    description="A demon of the night.",
    personality="Sardonic, curious.",
    scenario="",
    example_dialogues="Lilith: Well, well.",
    post_history_instructions="Stay in character.",
)


def test_full_layout() -> None:
    history = [
        HistoryTurn("user", "Ann", "hi"),
        HistoryTurn("assistant", "Lilith", "Hello, mortal."),
        HistoryTurn("user", "Bob", "who are you?"),
    ]
    messages = build_messages(
        LILITH,
        history,
        author_name="Ann",
        content="tell me more",
        timezone="Europe/Berlin",
        now=NOW,
    )
    assert messages == [
        {
            "role": "system",
            "content": "You are Lilith.\n\n"
            "## Description\nA demon of the night.\n\n"
            "## Personality\nSardonic, curious.\n\n"
            "## Example dialogues\nLilith: Well, well.\n\n"
            "Current date and time: Tuesday, 3 June 2025, 14:05 (Europe/Berlin)",
        },
        {"role": "user", "content": "Ann: hi"},
        {"role": "assistant", "content": "Hello, mortal."},
        {"role": "user", "content": "Bob: who are you?"},
        {"role": "user", "content": "Ann: tell me more"},
        {"role": "system", "content": "Stay in character."},
    ]


def test_minimal_character_has_no_system_message() -> None:
    messages = build_messages(Character(id="p", name="X"), [], author_name="Ann", content="yo")
    assert messages == [{"role": "user", "content": "Ann: yo"}]


def test_empty_sections_and_no_timezone_are_left_out() -> None:
    character = Character(id="p", name="X", system_prompt="  Be kind.  ", scenario="   ")
    assert system_text(character) == "Be kind."


def test_empty_history_turns_are_skipped_and_system_turns_kept() -> None:
    history = [HistoryTurn("user", "Ann", ""), HistoryTurn("system", "", "note")]
    messages = build_messages(Character(id="p", name="X"), history, author_name="", content="x")
    assert messages == [{"role": "system", "content": "note"}, {"role": "user", "content": "x"}]


def test_unknown_timezone_falls_back_to_utc() -> None:
    assert current_date_line("Mars/Olympus", NOW) == (
        "Current date and time: Tuesday, 3 June 2025, 12:05 (UTC)"
    )
    assert "(UTC)" in current_date_line("../../etc/passwd", NOW)


def test_token_estimates() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    messages = build_messages(Character(id="p", name="X"), [], author_name="A", content="bcdefg")
    assert estimate_prompt_tokens(messages) == 3  # "A: bcdefg": 9 characters, rounded up
