"""Page tokens and the token-budget cut of history pages."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tzurot.memory.domain import Attachment, Role, StoredTurn
from tzurot.memory.paging import (
    TURN_OVERHEAD_TOKENS,
    HistoryCursor,
    decode_cursor,
    encode_cursor,
    estimate_tokens,
    newest_within,
)
from tzurot.runtime.errors import InvalidArgument

WHEN = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def turn(content: str, position: int = 0, description: str = "") -> StoredTurn:
    attachments = (Attachment("https://x/y.png", "image/png", "y.png", 1, description),)
    return StoredTurn(
        id=f"id-{position}",
        job_id="job",
        position=position,
        channel_id="c",
        personality_id="p",
        user_id="u",
        role=Role.USER,
        author_id="",
        author_name="",
        content=content,
        message_ids=(),
        attachments=attachments if description else (),
        created_at=WHEN,
    )


def test_a_cursor_survives_its_token_exactly() -> None:
    cursor = HistoryCursor(WHEN, "job/ü 1", 3)
    token = encode_cursor(cursor)
    assert token.isascii()
    assert "=" not in token
    assert decode_cursor(token) == cursor


@pytest.mark.parametrize(
    "token",
    [
        "!!!",
        "e30",  # {}
        encode_cursor(HistoryCursor(WHEN, "j", 1)).replace("e", "f"),
        "eyJ2IjoxLCJ0IjoiMjAyNi0wMy0wMVQxMjozMDoxNSIsImoiOiJqIiwicCI6MX0",  # naive time
        # What the database would refuse (INTERNAL, not INVALID_ARGUMENT, before):
        encode_cursor(HistoryCursor(WHEN, "job", 32768)),  # past a smallint
        encode_cursor(HistoryCursor(WHEN, "job", 10**30)),
        encode_cursor(HistoryCursor(WHEN, "job", -1)),
        encode_cursor(HistoryCursor(WHEN, "jo\x00b", 0)),  # NUL in text
        encode_cursor(HistoryCursor(WHEN, "j" * 1000, 0)),
        encode_cursor(  # the year 1 in UTC+1 is before the year 1 in UTC
            HistoryCursor(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "job", 0)
        ),
    ],
)
def test_foreign_tokens_are_refused_naming_the_field(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        decode_cursor(token)
    assert caught.value.field == "page_token"


def test_the_estimate_is_chars_over_four_rounded_up_plus_overhead() -> None:
    assert estimate_tokens(turn("")) == TURN_OVERHEAD_TOKENS
    assert estimate_tokens(turn("abcd")) == 1 + TURN_OVERHEAD_TOKENS
    assert estimate_tokens(turn("abcde")) == 2 + TURN_OVERHEAD_TOKENS
    assert estimate_tokens(turn("abcd", description="a cat")) == 3 + TURN_OVERHEAD_TOKENS


def test_the_budget_keeps_a_contiguous_run_of_newest_turns() -> None:
    newest_first = [turn("x" * 8, 3), turn("x" * 400, 2), turn("x", 1)]
    six = 2 + TURN_OVERHEAD_TOKENS
    assert newest_within(newest_first, six) == newest_first[:1]
    # The small oldest turn would fit alone, but history never skips the big one.
    assert newest_within(newest_first, six + 5 + TURN_OVERHEAD_TOKENS) == newest_first[:1]
    assert newest_within(newest_first, 10_000) == newest_first
    assert newest_within(newest_first, six - 1) == []
