"""What the records before and after an unconfirmed PutKey say of it (key_landing.py)."""

from datetime import UTC, datetime

import grpc
import pytest

from tzurot.gateway.domain import WalletKey
from tzurot.gateway.key_landing import Landing, landing, may_have_landed, stored_hint
from tzurot.runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    TzurotError,
    Unavailable,
)

T0 = datetime(2026, 12, 1, tzinfo=UTC)
T1 = datetime(2026, 12, 2, tzinfo=UTC)
NEW = "WXYZ"


def key(hint: str, *, used: datetime | None = None, rejected: datetime | None = None) -> WalletKey:
    return WalletKey("openrouter", T0, used, hint, rejected)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, key(NEW), Landing.STORED),  # the first key, there now
        (None, None, Landing.NOT_STORED),
        (key("abcd"), key("abcd"), Landing.NOT_STORED),  # the old key, untouched
        (key(NEW, used=T1), key(NEW), Landing.STORED),  # its use cleared by the replace
        (key(NEW, rejected=T1), key(NEW), Landing.STORED),  # its rejection cleared
        (key("abcd", used=T1), key(NEW), Landing.STORED),
        (key(NEW, used=T1), key(NEW, used=T1), Landing.NOT_STORED),
        (key(NEW), key(NEW), Landing.UNCONFIRMED),  # a write would have left it so
        (key("abcd"), key("efgh"), Landing.UNCONFIRMED),  # another write meanwhile
        (key("abcd"), None, Landing.NOT_STORED),  # deleted meanwhile: not stored now
    ],
)
def test_landing(before: WalletKey | None, after: WalletKey | None, expected: Landing) -> None:
    assert landing(before, after, NEW) is expected


S0 = datetime(2026, 12, 3, 10, 0, 0, 1, tzinfo=UTC)
S1 = datetime(2026, 12, 3, 10, 0, 0, 2, tzinfo=UTC)


def stored_key(hint: str, stored_at: datetime, *, used: datetime | None = None) -> WalletKey:
    return WalletKey("openrouter", T0, used, hint, None, stored_at)


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # The same key (or one with the same last four) stored again, never used: the store
        # time moved, so it landed (an unconfirmed answer before store times).
        (stored_key(NEW, S0), stored_key(NEW, S1), Landing.STORED),
        (stored_key(NEW, S0), stored_key(NEW, S0), Landing.NOT_STORED),
        # A use meanwhile is no write.
        (stored_key(NEW, S0), stored_key(NEW, S0, used=T1), Landing.NOT_STORED),
        (stored_key("abcd", S0), stored_key("abcd", S0, used=T1), Landing.NOT_STORED),
        (stored_key("abcd", S0), stored_key(NEW, S1), Landing.STORED),
        (stored_key("abcd", S0), stored_key("efgh", S1), Landing.UNCONFIRMED),  # another write
        (None, stored_key(NEW, S1), Landing.STORED),
        # An older keyvault's record on one side: as without store times.
        (key(NEW), stored_key(NEW, S1), Landing.STORED),
        (stored_key(NEW, S0), key(NEW), Landing.STORED),
    ],
)
def test_landing_by_store_time(
    before: WalletKey | None, after: WalletKey | None, expected: Landing
) -> None:
    assert landing(before, after, NEW) is expected


def test_the_hint_is_keyvaults() -> None:
    assert stored_hint("sk-or-v1-0123456789abWXYZ") == NEW
    assert stored_hint("abcdefg") == "g"  # never more than a quarter of the key
    assert stored_hint("abc") == ""


@pytest.mark.parametrize(
    ("err", "unsure"),
    [
        (DeadlineExceeded("Deadline Exceeded"), True),
        (Unavailable("the keyvault is restarting"), True),
        (TzurotError("cancelled", code=grpc.StatusCode.CANCELLED), True),
        (InvalidArgument("api_key", "bad"), False),
        (FailedPrecondition("deleting", reason="USER_DATA_DELETING"), False),
    ],
)
def test_which_failures_may_have_stored_the_key(err: TzurotError, unsure: bool) -> None:
    assert may_have_landed(err) is unsure
