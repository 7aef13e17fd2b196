"""`tzurot wallet list` prints one line a key (wallet_commands.key_line): a key the gateway
says is never used (`WalletKey.takes_no_key`) ends saying so and how to delete it."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.cli.wallet_commands import key_line
from tzurot.v1 import gateway_pb2 as gw

CREATED = Timestamp()
CREATED.FromDatetime(datetime(2026, 3, 4, tzinfo=UTC))


def test_a_key_its_provider_takes_none_of_is_said_not_used() -> None:
    key = gw.WalletKey(provider="my-llm", hint="4Kd8", created_at=CREATED, takes_no_key=True)
    assert key_line(key) == (
        "my-llm       …4Kd8  created 2026-03-04  last used never  (not used: my-llm takes no "
        "key; tzurot wallet remove my-llm deletes it)"
    )


def test_other_keys_read_as_before() -> None:
    used = Timestamp()
    used.FromDatetime(datetime(2026, 3, 5, 10, 30, tzinfo=UTC))
    key = gw.WalletKey(
        provider="openrouter", hint="abcd", created_at=CREATED, last_used_at=used, active=False
    )
    assert key_line(key) == ("openrouter   …abcd  created 2026-03-04  last used 2026-03-05 10:30")
