from __future__ import annotations

import pytest

from tzurot.inference.lore.macros import MacroContext, expand

CTX = MacroContext(char="Grigori", user="Ann", seed="job-1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{char}} greets {{user}}.", "Grigori greets Ann."),
        ("{{CHAR}} and {{User}}", "Grigori and Ann"),
        ("<BOT> and <USER>, <char> and <user>", "Grigori and Ann, Grigori and Ann"),
        ("{{original}}Stay in character.", "Stay in character."),
        ("a{{// hidden note}}b", "ab"),
        ("a{{comment: shown to users only}}b", "ab"),
        ("a{{hidden_key:secret}}b", "ab"),
        ("{{reverse:Hello}}", "olleH"),
        ("{{unknown}} stays", "{{unknown}} stays"),
        ("{{random:only}}", "only"),
        ("{{random:a\\,b}}", "a,b"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, CTX) == expected


def test_random_pick_roll_are_in_range_and_repeat_per_seed() -> None:
    picks = {expand("{{pick:x,y,z}}", MacroContext("c", "u", seed=str(i))) for i in range(60)}
    assert picks == {"x", "y", "z"}
    assert {expand("{{random::p::q}}", MacroContext("c", "u", seed=str(i))) for i in range(60)} == {
        "p",
        "q",
    }
    rolls = {int(expand("{{roll:d6}}", MacroContext("c", "u", seed=str(i)))) for i in range(200)}
    assert rolls == {1, 2, 3, 4, 5, 6}
    assert expand("{{roll:20}} {{pick:a,b}}", CTX) == expand("{{roll:20}} {{pick:a,b}}", CTX)
    assert expand("{{roll:0}}", CTX) == "{{roll:0}}"
