"""History request validation names the offending field; limits sit where documented."""

import sys

import pytest

from tzurot.memory.domain import Attachment, Exchange, NewTurn
from tzurot.memory.validation import (
    MAX_HISTORY_LIMIT,
    _printable_word,
    check_exchange,
    check_history_limit,
    check_id,
    check_lookup_ids,
)
from tzurot.runtime.errors import InvalidArgument


def exchange(*turns: NewTurn, job_id: str = "job", user_id: str = "") -> Exchange:
    return Exchange(job_id, "chan", "persona", user_id, turns)


def field_of(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return error.value.field


@pytest.mark.parametrize("value", ["123456789012345678", "cli:alice", "x" * 128])
def test_good_ids(value: str) -> None:
    assert check_id("channel_id", value) == value


@pytest.mark.parametrize("value", ["", "has space", "tab\there", "x" * 129, "bell\x07"])
def test_bad_ids(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_id("channel_id", value)
    assert field_of(caught) == "channel_id"


def test_optional_id_may_be_empty() -> None:
    assert check_id("user_id", "", required=False) == ""


def test_a_good_exchange_passes() -> None:
    turns = (NewTurn(role="user", content="hi"), NewTurn(role="assistant", content=""))
    assert check_exchange(exchange(*turns)).turns == turns


@pytest.mark.parametrize(
    ("turn", "field"),
    [
        (NewTurn(role="system", content="x"), "turns[0].role"),
        (NewTurn(role="", content="x"), "turns[0].role"),
        (NewTurn(role="user", content="x" * 32_001), "turns[0].content"),
        (NewTurn(role="user", content="x", author_id="a b"), "turns[0].author_id"),
        (NewTurn(role="user", content="x", author_name="n" * 129), "turns[0].author_name"),
        (NewTurn(role="user", content="x", message_ids=("1",) * 33), "turns[0].message_ids"),
        (
            NewTurn(role="user", content="x", attachments=(Attachment(url="u"),) * 17),
            "turns[0].attachments",
        ),
        (
            NewTurn(role="user", content="x", attachments=(Attachment(url="u" * 2049),)),
            "turns[0].attachments[0].url",
        ),
    ],
)
def test_bad_turns_name_the_field(turn: NewTurn, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_exchange(exchange(turn))
    assert field_of(caught) == field


@pytest.mark.parametrize("count", [0, 17])
def test_turn_count(count: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_exchange(exchange(*[NewTurn(role="user", content="x")] * count))
    assert field_of(caught) == "turns"


def test_history_limit() -> None:
    assert check_history_limit(0) == 50
    assert check_history_limit(0, default=7) == 7
    assert check_history_limit(MAX_HISTORY_LIMIT) == MAX_HISTORY_LIMIT
    for bad in (-1, MAX_HISTORY_LIMIT + 1):
        with pytest.raises(InvalidArgument) as caught:
            check_history_limit(bad)
        assert field_of(caught) == "limit"


def test_lookup_ids() -> None:
    assert check_lookup_ids(["1", "2"]) == ("1", "2")
    for bad, field in (([], "message_ids"), ([""], "message_ids[0]"), (["1"] * 501, "message_ids")):
        with pytest.raises(InvalidArgument) as caught:
            check_lookup_ids(bad)
        assert field_of(caught) == field


def test_an_id_refuses_exactly_whitespace_and_unprintable_characters() -> None:
    """Every code point: an id character is one that is printable and not whitespace (the
    check scans whole strings in C; of the whitespace characters only ' ' is printable)."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        allowed = char.isprintable() and not char.isspace()
        assert _printable_word(f"a{char}b") is allowed, hex(code)
    assert _printable_word("")
