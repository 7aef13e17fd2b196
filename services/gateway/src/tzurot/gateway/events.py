"""The bot's event stream: what it must post unprompted, delivered at least once per shard.

Events live in `core.bot_events` (an outbox any replica writes). A subscriber (one bot shard)
claims due events for a lease (`FOR UPDATE SKIP LOCKED`), posts them and acknowledges each;
one it never acknowledges (the bot died, the stream broke) is claimed again after its lease,
by whichever subscriber holds the shard then. Replicas that queue an event wake their own
streams at once; others notice within `poll_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from datetime import timedelta

import structlog

from tzurot.gateway.clock import Clock
from tzurot.gateway.group_store import BotEventRow, GroupStore
from tzurot.runtime.errors import InvalidArgument, NotFound

log = structlog.get_logger(__name__)


class BotEvents:
    def __init__(
        self,
        store: GroupStore,
        clock: Clock,
        *,
        poll_seconds: float = 1.0,
        lease_seconds: float = 60.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._poll = poll_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._wakers: set[asyncio.Event] = set()

    def wake(self) -> None:
        """Something was queued (or the clock moved): look again now."""
        for waker in self._wakers:
            waker.set()

    async def stream(self, shard_id: int, shard_count: int) -> AsyncGenerator[BotEventRow, None]:
        if shard_count < 0 or shard_id < 0 or (shard_count > 1 and shard_id >= shard_count):
            raise InvalidArgument("shard_id", f"shard {shard_id} of {shard_count} does not exist")
        waker = asyncio.Event()
        self._wakers.add(waker)
        log.info("events.subscribed", shard_id=shard_id, shard_count=shard_count)
        try:
            while True:
                waker.clear()
                events = await self._store.claim_events(
                    self._clock.now(), self._lease, shard_id, shard_count
                )
                for event in events:
                    yield event
                if events:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waker.wait(), self._poll)
        finally:
            self._wakers.discard(waker)
            log.info("events.unsubscribed", shard_id=shard_id)

    async def ack(self, event_id: str, message_ids: Sequence[str], dropped_reason: str) -> None:
        try:
            event = await self._store.event(event_id)
        except Exception:  # a malformed uuid
            event = None
        if event is None:
            raise NotFound(f"no event {event_id!r}", reason="EVENT_NOT_FOUND")
        if await self._store.ack_event(event_id, message_ids, dropped_reason, self._clock.now()):
            log.info(
                "events.acked",
                event_id=event_id,
                kind=event.kind,
                reason=event.reason or event.notice_kind,
                dropped=dropped_reason,
            )
