"""Whether a key keyvault did not confirm was stored: the truth a `/wallet set` answers with
when PutKey ends without an answer (keyvault stalled past PUT_KEY_SECONDS, its connection
broke, it restarted), since keyvault may have committed the key before it went quiet: then
the key is stored (and may be used, and billed), and "it failed" would be a lie.

The wallet reads the user's keys before the write and again after it (ListKeys: what is
known about a key, never the key): a write that landed leaves the provider's record with the
new key's hint (keyvault's `key_hint`: at most its last four characters) and, replacing a
key, a changed record: its store time (`stored_at`, which every write moves) differs, so a
key re-stored with the same hint and never used reads stored too. An unchanged record, or
none, means it was not stored. Only from a keyvault without store times: a record the write
could have left as it was (the same hint, never used nor rejected: most likely the very key,
stored already). That, one another write changed meanwhile, or a read that failed, is not
claimed either way: the user is told
that it is unconfirmed and that `/wallet list` shows what is stored. PutKey replaces whatever
is stored, so the same `/wallet set` again converges. Neither the key nor its hint is logged.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable

import grpc
import structlog
from pydantic import SecretStr

from tzurot.gateway.domain import WalletKey
from tzurot.runtime.errors import FailedPrecondition, TzurotError

log = structlog.get_logger(__name__)

UNSURE_CODES = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
    }
)
"""PutKey's failures after which the key may have been stored all the same."""

READ_BACK_SECONDS = 5.0
"""How long the wallet waits for keyvault's ListKeys when it reads back an unconfirmed
write."""

KEY_NOT_STORED = "KEY_NOT_STORED"
KEY_STORE_UNCONFIRMED = "KEY_STORE_UNCONFIRMED"


class Landing(enum.Enum):
    STORED = "stored"
    NOT_STORED = "not_stored"
    UNCONFIRMED = "unconfirmed"


def may_have_landed(err: TzurotError) -> bool:
    """Whether PutKey's `err` leaves open that keyvault stored the key."""
    return err.code in UNSURE_CODES


def stored_hint(api_key: str) -> str:
    """The hint keyvault keeps of a key (its `domain.key_hint`): at most the last four
    characters, and never more than a quarter of the key."""
    return api_key[-min(4, len(api_key) // 4) :] if len(api_key) >= 4 else ""


def landing(before: WalletKey | None, after: WalletKey | None, hint: str) -> Landing:
    """What the provider's records before and after an unconfirmed write say of it."""
    if after is None:
        return Landing.NOT_STORED
    if before is not None and before.stored_at is not None and after.stored_at is not None:
        return _by_store_time(before, after, hint)
    if after.hint != hint:
        return Landing.NOT_STORED if after == before else Landing.UNCONFIRMED
    if before is None or after != before:
        return Landing.STORED
    if before.last_used_at is None and before.rejected_at is None:
        return Landing.UNCONFIRMED  # the write would have left it as it was
    return Landing.NOT_STORED


def _by_store_time(before: WalletKey, after: WalletKey, hint: str) -> Landing:
    """Store times say whether anything was written since the first read (a use or a
    rejection meanwhile moves neither); one written with another hint is another write."""
    if after.stored_at == before.stored_at:
        return Landing.NOT_STORED
    return Landing.STORED if after.hint == hint else Landing.UNCONFIRMED


def not_stored(provider: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the key vault did not answer in time, and your {provider} key was not stored; "
        f"try `/wallet set {provider}` again",
        reason=KEY_NOT_STORED,
        metadata={"provider": provider},
    )


def unconfirmed(provider: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the key vault did not confirm in time whether your {provider} key was stored; "
        f"`/wallet list` shows what is stored, and `/wallet set {provider}` again stores it "
        "for sure",
        reason=KEY_STORE_UNCONFIRMED,
        metadata={"provider": provider},
    )


async def read_back(
    record: Callable[[], Awaitable[WalletKey | None]],
    provider: str,
    api_key: SecretStr,
    before: WalletKey | None,
    err: TzurotError,
) -> WalletKey:
    """`provider`'s record (`record()`, read again now) when the key PutKey did not
    confirm (`err`) landed all the same; else the error that says the truth: not stored,
    or unconfirmed."""
    try:
        async with asyncio.timeout(READ_BACK_SECONDS):
            after = await record()
    except (TzurotError, TimeoutError) as read_err:
        log.warning(
            "wallet.key_set_unconfirmed",
            provider=provider,
            code=err.code.name,
            read_back=type(read_err).__name__,
        )
        raise unconfirmed(provider) from None
    found = landing(before, after, stored_hint(api_key.get_secret_value()))
    log.warning(
        "wallet.key_set_read_back", provider=provider, code=err.code.name, landing=found.value
    )
    if found is Landing.STORED:
        assert after is not None  # landing() says so
        return after
    if found is Landing.NOT_STORED:
        raise not_stored(provider) from None
    raise unconfirmed(provider) from None
