"""The bot's event stream: what it must post unprompted, delivered at least once per shard.

Events live in `core.bot_events` (an outbox any replica writes). A subscriber (one bot shard)
claims due events for a lease (`FOR UPDATE SKIP LOCKED`), posts them and acknowledges each.
While the subscription lives it renews the lease of everything it claimed and that is not
acknowledged yet (every third of a lease), so an answer that takes longer than a lease (a
reasoning model, an image) is never sent a second time while the bot is still posting it.
The bot hands back what it leaves for later (`defer`: sent again after a lease, no longer
renewed). When a subscription ends (the bot went away, the stream broke, its deadline passed)
whatever it had claimed and not had acknowledged is released at once, so a live subscriber
gets it next; only the claims of a subscription that could not say goodbye (its gateway
replica died, or lost Postgres) wait out their lease. Replicas that queue an event wake their
own streams at once; others notice within `poll_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime, timedelta

import structlog

from tzurot.gateway.clock import Clock
from tzurot.gateway.group_store import BotEventRow, GroupStore
from tzurot.runtime.errors import InvalidArgument, NotFound

log = structlog.get_logger(__name__)


class Subscription:
    """One subscriber's stream and its claims (id → the lease end it was claimed with)."""

    def __init__(self, events: BotEvents, shard_id: int, shard_count: int) -> None:
        self._events = events
        self.shard_id = shard_id
        self.shard_count = shard_count
        self._held: dict[str, datetime] = {}
        self._waker = asyncio.Event()
        self.ended = False
        self._release: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None

    async def events(self) -> AsyncGenerator[BotEventRow, None]:
        owner = self._events
        owner.wakers.add(self._waker)
        log.info("events.subscribed", shard_id=self.shard_id, shard_count=self.shard_count)
        self._renewing = asyncio.get_running_loop().create_task(self._keep_claims())
        try:
            while not self.ended:
                self._waker.clear()
                now = owner.clock.now()
                claimed = await owner.store.claim_events(
                    now, owner.lease, self.shard_id, self.shard_count
                )
                self._hold(claimed, now + owner.lease)
                for event in claimed:
                    if self.ended:
                        return
                    yield event
                if claimed:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._waker.wait(), owner.poll)
        finally:
            await self.close()

    def _hold(self, claimed: list[BotEventRow], until: datetime) -> None:
        now = self._events.clock.now()
        for event_id in [i for i, end in self._held.items() if end < now]:
            del self._held[event_id]  # its lease ran out: no longer this subscriber's
        if self.ended:  # ended while claiming: these go straight back
            self._events.release_soon({e.id: until for e in claimed})
            return
        self._held.update((e.id, until) for e in claimed)

    async def renew(self) -> int:
        """Extends every claim this subscription still holds to a fresh lease; how many.
        What was acknowledged, deferred or claimed by another since is no longer held."""
        owner = self._events
        held = dict(self._held)
        if not held:
            return 0
        until = owner.clock.now() + owner.lease
        renewed = await owner.store.renew_events(held, until)
        if self.ended:  # ended while renewing: the release went out with the old lease ends
            owner.release_soon(dict.fromkeys(renewed, until))
            return len(renewed)
        for event_id, end in held.items():
            if self._held.get(event_id) != end:
                continue  # claimed again meanwhile, with its own lease end
            if event_id in renewed:
                self._held[event_id] = until
            else:
                del self._held[event_id]
        return len(renewed)

    async def _keep_claims(self) -> None:
        """Renews the claims every third of a lease (of the clock's time), until the end."""
        owner = self._events
        every = owner.lease / 3
        last = owner.clock.now()
        while not self.ended:
            await asyncio.sleep(owner.poll)
            if owner.clock.now() - last < every:
                continue
            last = owner.clock.now()
            try:
                # Shielded: ended meanwhile, a renewal that went through is still released.
                await asyncio.shield(self.renew())
            except Exception:  # Postgres away: the next one may pass; the lease still holds
                log.warning("events.renew_failed", shard_id=self.shard_id, exc_info=True)

    def end(self) -> asyncio.Task[None]:
        """Ends the subscription: its unacknowledged claims are released (once)."""
        self.ended = True
        self._waker.set()
        if self._renewing is not None:
            self._renewing.cancel()
        if self._release is None:
            self._events.wakers.discard(self._waker)
            held, self._held = self._held, {}
            self._release = self._events.release_soon(held)
            log.info("events.unsubscribed", shard_id=self.shard_id, released=len(held))
        return self._release

    async def close(self) -> None:
        """end(), waiting for the release (which goes on even if this is cancelled)."""
        await asyncio.shield(self.end())


class BotEvents:
    def __init__(
        self,
        store: GroupStore,
        clock: Clock,
        *,
        poll_seconds: float = 1.0,
        lease_seconds: float = 60.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.poll = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.wakers: set[asyncio.Event] = set()
        self._releasing: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        """Something was queued (or the clock moved): look again now."""
        for waker in self.wakers:
            waker.set()

    def subscribe(self, shard_id: int, shard_count: int) -> Subscription:
        if shard_count < 0 or shard_id < 0 or (shard_count > 1 and shard_id >= shard_count):
            raise InvalidArgument("shard_id", f"shard {shard_id} of {shard_count} does not exist")
        return Subscription(self, shard_id, shard_count)

    async def stream(self, shard_id: int, shard_count: int) -> AsyncGenerator[BotEventRow, None]:
        """A subscription as one generator: closing it releases its claims."""
        subscription = self.subscribe(shard_id, shard_count)
        async with contextlib.aclosing(subscription.events()) as events:
            async for event in events:
                yield event

    def release_soon(self, held: dict[str, datetime]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._release(held))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)
        return task

    async def _release(self, held: dict[str, datetime]) -> None:
        if not held:
            return
        try:
            released = await self.store.release_events(held)
        except Exception:  # the lease still brings them back
            log.exception("events.release_failed", events=len(held))
            return
        if released:
            log.info("events.released", events=released)
            self.wake()

    async def ack(
        self,
        event_id: str,
        message_ids: Sequence[str],
        dropped_reason: str,
        *,
        history_pending: bool = False,
    ) -> None:
        """Acknowledged: never sent again. `history_pending`: the posted event's history is
        noted as still to be stored, in the acknowledgement's own statement."""
        event = await self._event(event_id)
        acked = await self.store.ack_event(
            event_id,
            message_ids,
            dropped_reason,
            self.clock.now(),
            history_pending=history_pending,
        )
        if acked:
            log.info(
                "events.acked",
                event_id=event_id,
                kind=event.kind,
                reason=event.reason or event.notice_kind,
                dropped=dropped_reason,
            )

    async def defer(self, event_id: str, why: str) -> None:
        """The bot could not handle the event now (`why`: a passing failure): nobody claims
        it for a lease, then it is sent again (its claims are counted: MAX_EVENT_ATTEMPTS)."""
        event = await self._event(event_id)
        if await self.store.defer_event(event_id, self.clock.now() + self.lease):
            log.info(
                "events.deferred",
                event_id=event_id,
                kind=event.kind,
                attempts=event.attempts,
                why=why,
            )

    async def _event(self, event_id: str) -> BotEventRow:
        try:
            event = await self.store.event(event_id)
        except Exception:  # a malformed uuid
            event = None
        if event is None:
            raise NotFound(f"no event {event_id!r}", reason="EVENT_NOT_FOUND")
        return event
