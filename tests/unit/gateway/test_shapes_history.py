"""A shapes.inc chat history cut into exchanges: one human's messages and the answers after
them, in time order, never more turns than memory takes."""

from __future__ import annotations

from datetime import UTC, datetime

from tzurot.gateway.shapes.documents import ShapeMessage
from tzurot.gateway.shapes.history import HistoryExchange, exchanges


def msg(i: int, role: str, user: str = "", ts: float | None = None) -> ShapeMessage:
    return ShapeMessage.model_validate(
        {
            "id": f"m{i}",
            "role": role,
            "user_id": user,
            "content": f"text {i}",
            "timestamp": 100 + i if ts is None else ts,
        }
    )


def shape(found: list[HistoryExchange]) -> list[tuple[str, list[str]]]:
    return [(e.user_id, [m.id for m in e.messages]) for e in found]


def test_user_messages_and_the_answers_after_them_make_an_exchange() -> None:
    history = [
        msg(0, "assistant"),  # an answer before anyone spoke: its own exchange
        msg(1, "user", "a"),
        msg(2, "user", "a"),  # the same human again: same exchange
        msg(3, "assistant"),
        msg(4, "assistant"),
        msg(5, "user", "b"),
        msg(6, "user", "a"),  # another human: a new exchange
        msg(7, "assistant"),
    ]
    assert shape(exchanges(history, max_turns=16)) == [
        ("", ["m0"]),
        ("a", ["m1", "m2", "m3", "m4"]),
        ("b", ["m5"]),
        ("a", ["m6", "m7"]),
    ]


def test_time_order_empty_messages_the_turn_limit_and_the_first_time() -> None:
    history = [msg(1, "assistant", ts=200), msg(0, "user", "a", ts=100), msg(2, "user", "a")]
    history[2].content = "  "  # nothing said: left out
    found = exchanges(history, max_turns=16)
    assert shape(found) == [("a", ["m0", "m1"])]
    assert found[0].occurred_at == datetime.fromtimestamp(100, UTC)
    assert found[0].key == "m0"
    long = [msg(i, "user", "a") for i in range(5)]
    assert shape(exchanges(long, max_turns=2)) == [
        ("a", ["m0", "m1"]),
        ("a", ["m2", "m3"]),
        ("a", ["m4"]),
    ]
