"""A group channel's history as one personality sees it: attribution and dedup."""

from __future__ import annotations

from tzurot.inference.domain import GroupMember, HistoryTurn
from tzurot.inference.group_view import answered_already, group_history, others

LILITH, SAGE = GroupMember("p-lil", "Lilith"), GroupMember("p-sage", "Sage")


def turn(role: str, name: str, text: str, ids: tuple[str, ...], pid: str) -> HistoryTurn:
    return HistoryTurn(role, name, text, author_id="", message_ids=ids, personality_id=pid)  # type: ignore[arg-type]  # role literal from the table


HISTORY = [
    turn("user", "alice", "hi all", ("m1",), "p-lil"),
    turn("assistant", "Lilith", "Hello, Alice.", ("w1",), "p-lil"),
    turn("user", "alice", "hi all", ("m1",), "p-sage"),  # the same message, Sage's exchange
    turn("assistant", "Sage", "Greetings.", ("w2",), "p-sage"),
]


def test_others_answers_are_theirs_and_a_shared_message_is_kept_once() -> None:
    view = group_history(HISTORY, "p-lil", [LILITH, SAGE])
    assert [(t.role, t.author_name, t.content) for t in view] == [
        ("user", "alice", "hi all"),
        ("assistant", "Lilith", "Hello, Alice."),
        ("user", "Sage", "Greetings."),
    ]
    assert view[2].author_id == "personality:p-sage"


def test_seen_from_the_other_side() -> None:
    view = group_history(HISTORY, "p-sage", [LILITH, SAGE])
    assert [(t.role, t.author_name) for t in view] == [
        ("user", "alice"),
        ("user", "Lilith"),
        ("assistant", "Sage"),
    ]


def test_a_message_already_answered_is_found_in_the_history() -> None:
    view = group_history(HISTORY[:2], "p-sage", [LILITH, SAGE])
    assert answered_already(view, ["m1"])
    assert not answered_already(view, ["m9"])
    assert not answered_already(view, [])
    assert others([LILITH, SAGE], "p-sage") == ["Lilith"]
