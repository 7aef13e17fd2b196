"""Wallet truth, off the request path: which stored keys answered (keyvault's "last used")
and which the provider rejected (the key turns inactive), sent to keyvault's MarkUsed.

An answer only notes its use in memory; a background loop sends what gathered every
`flush_seconds` in one call, so keyvault is never on the hot path. A rejection is sent at
once: the answer failed anyway, and the user's next `/wallet list` must already say so.
Which failures are such a rejection is decided here (`refused_stored_key`) for every paid
call: an answer, a speech, a voice clone; a failed answer's error also names the wallet keys
a skill's service refused before it failed (`refused_before_failing`). Inference says such a
refusal as it happens too (KeyRefused): marked then, and not again by the reply's report (its
run passes them as `already`).

A refusal is of the key that was read for the call, not of whatever the user stores since:
the caller passes `taken_after`, a time no later than the key was read (`now()` before the
call began), and keyvault marks the stored key only when it was stored by then
(KeyUse.taken_after against KeyRecord.stored_at), so a key stored anew while a reply ran
stays active when the provider refuses the old one; pending uses merge only into one that
covers them (`_covers`), never pairing one key's use time with another's bound. A batch
that keyvault did not take (it failed, or the flush was cancelled) is kept for the next
flush.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog

from tzurot.gateway.domain import KeyUse
from tzurot.runtime.errors import TzurotError

log = structlog.get_logger(__name__)

MAX_PENDING = 1000
"""Uses remembered between flushes (keyvault's batch limit); beyond it uses are dropped."""
INVALID_API_KEY = "INVALID_API_KEY"
REFUSED_KEY_PROVIDERS = "refused_key_providers"


def refused_stored_key(err: TzurotError, provider: str = "") -> str | None:
    """The provider whose key, stored in the user's wallet, `err` says it refused (inference's
    INVALID_API_KEY with `key_source` "user"; `provider` when the error names none); None for
    any other failure: a quota, a rate limit, a key lacking a permission, a provider
    unreachable or failing, the operator's key or a keyless local server refused."""
    if err.reason != INVALID_API_KEY or err.metadata.get("key_source") != "user":
        return None
    return err.metadata.get("provider") or provider or None


def refused_before_failing(err: TzurotError) -> list[str]:
    """The providers whose key, stored in the user's wallet, a skill's service refused (401)
    before the reply failed with `err` (inference's metadata `refused_key_providers`,
    comma-separated); none from any other error, or from an inference that predates it."""
    named = err.metadata.get(REFUSED_KEY_PROVIDERS, "")
    return sorted({name.strip() for name in named.split(",") if name.strip()})


@dataclass(frozen=True)
class TakenKeyUse(KeyUse):
    """A use of the key read at or after `taken_after`: keyvault applies it only to a key
    stored by then (KeyUse.taken_after), never to one the user stored since."""

    taken_after: datetime | None = None


def _use(
    user_id: str,
    provider: str,
    used_at: datetime,
    *,
    rejected: bool = False,
    taken_after: datetime | None = None,
) -> KeyUse:
    if taken_after is None:
        return KeyUse(user_id, provider, used_at, rejected=rejected)
    return TakenKeyUse(user_id, provider, used_at, rejected=rejected, taken_after=taken_after)


def taken_after(use: KeyUse) -> datetime | None:
    """When the key `use` was of was read at the earliest; None: not known (any key)."""
    return use.taken_after if isinstance(use, TakenKeyUse) else None


def _covers(kept: KeyUse, use: KeyUse) -> bool:
    """`kept` says all `use` says to keyvault: as late, and of every key `use` may be of (a
    bound no earlier; none: any key). A use is merged away only into one that covers it, so a
    time is never paired with another use's bound: a late answer of the old key never clears
    the refusal of a key stored since (pending uses that cover nothing of each other are sent
    apart; sequential calls, the usual case, leave one)."""
    bound, other = taken_after(kept), taken_after(use)
    later_bound = bound is None or (other is not None and bound >= other)
    return later_bound and kept.used_at >= use.used_at


class KeyUseSink(Protocol):
    async def record_uses(self, uses: Sequence[KeyUse]) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


class KeyUses:
    """Gathers key uses and sends them to keyvault in batches."""

    def __init__(
        self,
        sink: KeyUseSink,
        *,
        flush_seconds: float = 10.0,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._sink = sink
        self._flush_seconds = flush_seconds
        self._clock = clock
        # The latest uses per (user, provider, rejected), none covering another (`_covers`):
        # keyvault applies them in time order, so a key that failed and then worked (or the
        # reverse) ends in the right state.
        self._pending: dict[tuple[str, str, bool], list[KeyUse]] = {}
        self._lock = asyncio.Lock()

    def now(self) -> datetime:
        """The time to pass as `taken_after` for a key read from now on: taken before the
        call that reads it begins."""
        return self._clock()

    def used(self, user_id: str, provider: str, *, taken_after: datetime | None = None) -> None:
        """A stored key answered (the one read at or after `taken_after`); no I/O here."""
        self._note(_use(user_id, provider, self._clock(), taken_after=taken_after))

    async def rejected(
        self, user_id: str, provider: str, *, taken_after: datetime | None = None
    ) -> None:
        """The provider refused a stored key (401): marked inactive now, when it is the key
        read at or after `taken_after` (None: whatever key is stored); never raises."""
        self._note(_use(user_id, provider, self._clock(), rejected=True, taken_after=taken_after))
        await self.flush()

    async def refused(
        self,
        user_id: str,
        err: TzurotError,
        provider: str = "",
        *,
        already: Collection[str] = (),
        taken_after: datetime | None = None,
    ) -> None:
        """Marks the key inactive when `err` is its provider refusing the user's stored key
        (`refused_stored_key`), and so every key a skill's service refused before the reply
        failed (`refused_before_failing`), but those `already` marked for this reply (its
        KeyRefused); only a key stored by `taken_after`, when given (the call's start). Any
        other error changes nothing (never raises)."""
        refused = set(refused_before_failing(err))
        stored = refused_stored_key(err, provider)
        if stored is not None:
            refused.add(stored)
        refused -= set(already)
        if not refused:
            return
        now = self._clock()
        for name in sorted(refused):
            self._note(_use(user_id, name, now, rejected=True, taken_after=taken_after))
        await self.flush()

    async def flush(self) -> None:
        """Sends what gathered; on failure it stays for the next flush (raises nothing but a
        cancel). A cancel while keyvault is asked (a reply stopped as it marks a refused key)
        puts the batch back too, every user's uses in it: a mark its caller counts as done
        (KeyRefused's `marked`) is then sent by the next flush, never lost."""
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            sent, uses = False, [use for kept in batch.values() for use in kept]
            try:
                await self._sink.record_uses(uses)
                sent = True
            except Exception:
                log.warning("wallet.key_uses_not_recorded", uses=len(uses), exc_info=True)
            finally:
                if not sent:  # failed or cancelled: kept, before any noted meanwhile is dropped
                    self._put_back(batch)

    async def run(self) -> None:
        """Flushes every `flush_seconds` until cancelled."""
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    def _put_back(self, batch: dict[tuple[str, str, bool], list[KeyUse]]) -> None:
        """`batch` pending again, merged with what was noted since; past MAX_PENDING, uses
        noted since are dropped before the batch's (its rejections first of all)."""
        noted, self._pending = self._pending, {}
        for uses in (batch, noted):
            for use in sorted(
                (u for us in uses.values() for u in us), key=lambda u: not u.rejected
            ):
                self._note(use)

    def _note(self, use: KeyUse) -> None:
        key = (use.user_id, use.provider, use.rejected)
        known = self._pending.get(key, [])
        if any(_covers(kept, use) for kept in known):
            return
        kept = [k for k in known if not _covers(use, k)]
        if len(kept) == len(known) and self._count() >= MAX_PENDING:
            log.warning("wallet.key_uses_dropped", user_id=use.user_id, provider=use.provider)
            return
        self._pending[key] = [*kept, use]

    def _count(self) -> int:
        return sum(len(uses) for uses in self._pending.values())
