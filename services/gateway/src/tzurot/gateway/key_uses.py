"""Wallet truth, off the request path: which stored keys answered (keyvault's "last used")
and which the provider rejected (the key turns inactive), sent to keyvault's MarkUsed.

An answer only notes its use in memory; a background loop sends what gathered every
`flush_seconds` in one call, so keyvault is never on the hot path. A rejection is sent at
once: the answer failed anyway, and the user's next `/wallet list` must already say so.
Which failures are such a rejection is decided here (`refused_stored_key`) for every paid
call: an answer, a speech, a voice clone; a failed answer's error also names the wallet keys
a skill's service refused before it failed (`refused_before_failing`). Inference says such a
refusal as it happens too (KeyRefused): marked then, and not again by the reply's report (its
run passes them as `already`), so a key stored anew meanwhile is not marked by an old
refusal. A batch that keyvault could not take is kept for the next flush.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Protocol

import structlog

from tzurot.gateway.domain import KeyUse
from tzurot.runtime.errors import TzurotError

log = structlog.get_logger(__name__)

MAX_PENDING = 1000
"""Keys remembered between flushes (keyvault's batch limit); beyond it uses are dropped."""
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
        # The latest use per (user, provider, rejected): keyvault applies them in time order,
        # so a key that failed and then worked (or the reverse) ends in the right state.
        self._pending: dict[tuple[str, str, bool], KeyUse] = {}
        self._lock = asyncio.Lock()

    def used(self, user_id: str, provider: str) -> None:
        """A stored key answered; no I/O here."""
        self._note(KeyUse(user_id, provider, self._clock()))

    async def rejected(self, user_id: str, provider: str) -> None:
        """The provider refused a stored key (401): marked inactive now (never raises)."""
        self._note(KeyUse(user_id, provider, self._clock(), rejected=True))
        await self.flush()

    async def refused(
        self,
        user_id: str,
        err: TzurotError,
        provider: str = "",
        *,
        already: Collection[str] = (),
    ) -> None:
        """Marks the key inactive when `err` is its provider refusing the user's stored key
        (`refused_stored_key`), and so every key a skill's service refused before the reply
        failed (`refused_before_failing`), but those `already` marked for this reply (its
        KeyRefused); any other error changes nothing (never raises)."""
        refused = set(refused_before_failing(err))
        stored = refused_stored_key(err, provider)
        if stored is not None:
            refused.add(stored)
        refused -= set(already)
        if not refused:
            return
        now = self._clock()
        for name in sorted(refused):
            self._note(KeyUse(user_id, name, now, rejected=True))
        await self.flush()

    async def flush(self) -> None:
        """Sends what gathered; on failure it stays for the next flush (never raises)."""
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            try:
                await self._sink.record_uses(list(batch.values()))
            except Exception:
                log.warning("wallet.key_uses_not_recorded", uses=len(batch), exc_info=True)
                for use in batch.values():
                    self._note(use)

    async def run(self) -> None:
        """Flushes every `flush_seconds` until cancelled."""
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self.flush()

    def _note(self, use: KeyUse) -> None:
        key = (use.user_id, use.provider, use.rejected)
        known = self._pending.get(key)
        if known is None and len(self._pending) >= MAX_PENDING:
            log.warning("wallet.key_uses_dropped", user_id=use.user_id, provider=use.provider)
            return
        if known is None or known.used_at < use.used_at:
            self._pending[key] = use
