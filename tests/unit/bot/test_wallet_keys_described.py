"""How `/wallet list` describes each stored key (commands/wallet.describe_keys): a key the
gateway says is never used (`WalletKey.takes_no_key`: inference says its provider takes no
key) says so and how to delete it, whether or not it was marked inactive before; the others
read as before."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from tzurot.bot.commands.wallet import describe_keys
from tzurot.v1 import gateway_pb2 as gw

NOT_USED = "not used: my-llm takes no key; `/wallet remove my-llm` deletes it"


def test_a_key_its_provider_takes_none_of_is_said_not_used() -> None:
    keys = [
        gw.WalletKey(provider="my-llm", active=True, hint="4Kd8", takes_no_key=True),
        gw.WalletKey(provider="openrouter", active=True, hint="abcd"),
    ]
    assert describe_keys(keys).split("\n") == [
        "Your API keys:",
        f"- **my-llm** (…4Kd8): {NOT_USED}",
        "- **openrouter** (…abcd): active",
    ]


def test_not_used_comes_before_inactive() -> None:
    """A key its provider refused before it became keyless: storing a new one would not
    help (set refuses it), so the inactive advice would mislead."""
    used = Timestamp(seconds=1_700_000_000)
    key = gw.WalletKey(provider="my-llm", active=False, takes_no_key=True, last_used_at=used)
    assert describe_keys([key]).split("\n")[1] == (
        f"- **my-llm**: {NOT_USED}, last used <t:1700000000:R>"
    )


def test_an_inactive_key_without_the_flag_reads_as_before() -> None:
    key = gw.WalletKey(provider="openai", active=False)
    assert describe_keys([key]).split("\n")[1] == (
        "- **openai**: inactive: openai rejected it; store a new one with /wallet set"
    )
