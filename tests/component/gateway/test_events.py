"""The bot event outbox on real Postgres: claimed once, held while its stream lives however
long the bot takes, re-sent after its lease when it could not be released, per shard; given up
after MAX_EVENT_ATTEMPTS claims."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from structlog.testing import capture_logs

from tzurot.gateway.clock import ManualClock
from tzurot.gateway.domain import Location
from tzurot.gateway.events import BotEvents
from tzurot.gateway.group_store import BotEventRow, GroupStore
from tzurot.gateway.notifications import Notifications
from tzurot.gateway.outbox_store import MAX_EVENT_ATTEMPTS
from tzurot.gateway.store import GatewayStore

from .conftest import ALICE

pytestmark = pytest.mark.component

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SHARD_1_GUILD = str((1 << 22) * 3)  # (id >> 22) % 2 == 1


async def notice(
    store: GroupStore, text: str, *, guild: str = "", key: str | None = None
) -> str | None:
    return await store.add_event(
        {
            "kind": "notice",
            "notice_kind": "announcement",
            "text": text,
            "guild_id": guild,
            "channel_id": "c1",
            "dedup_key": key,
            "available_at": T0,
        }
    )


class CutOff(GroupStore):
    """A replica that lost Postgres after claiming (or died): its renewals never arrive."""

    async def renew_events(self, held: Mapping[str, datetime], until: datetime) -> set[str]:
        raise OSError("connection to the database lost")


async def renewed(store: GroupStore, event_id: str, until: datetime) -> None:
    """Waits until the event's claim reaches `until` (its subscriber renewed it)."""
    for _ in range(400):
        row = await store.event(event_id)
        assert row is not None
        if row.claimed_until is not None and row.claimed_until >= until:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"the claim was never renewed to {until}")


async def take(stream: AsyncGenerator[BotEventRow, None], count: int) -> list[str]:
    got = []
    for _ in range(count):
        got.append((await asyncio.wait_for(anext(stream), 10)).text)
    return got


async def test_two_subscribers_never_get_one_event_and_a_dedup_key_queues_once(
    engine: AsyncEngine,
) -> None:
    store, clock = GroupStore(engine), ManualClock(T0)
    for n in range(6):
        await notice(store, f"n{n}")
    assert await notice(store, "once", key="k") is not None
    assert await notice(store, "twice", key="k") is None
    events = BotEvents(store, clock, poll_seconds=0.05, lease_seconds=60)
    first, second = events.stream(0, 1), events.stream(0, 1)
    got = await take(first, 7)
    assert sorted(got) == sorted([f"n{n}" for n in range(6)] + ["once"])
    waiting = asyncio.ensure_future(anext(second))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # all of them are the first subscriber's until their lease ends
    await stop(waiting)
    await first.aclose()
    await second.aclose()


async def stop(task: asyncio.Future[BotEventRow]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_an_ended_subscribers_unacknowledged_event_goes_to_a_live_one_at_once(
    engine: AsyncEngine,
) -> None:
    """The bot went away before acknowledging: the event is not held for the lease."""
    store, clock = GroupStore(engine), ManualClock(T0)
    event_id = await notice(store, "hello")
    assert event_id is not None
    events = BotEvents(store, clock, poll_seconds=0.05, lease_seconds=60)
    gone = events.stream(0, 1)
    assert await take(gone, 1) == ["hello"]
    live = events.stream(0, 1)
    waiting = asyncio.ensure_future(anext(live))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # the first subscriber's while it lives
    await gone.aclose()  # the bot died before acknowledging; the clock has not moved
    assert (await asyncio.wait_for(waiting, 10)).text == "hello"
    await events.ack(event_id, ["m1"], "")
    clock.advance(timedelta(seconds=61))
    again = asyncio.ensure_future(anext(live))
    await asyncio.sleep(0.3)
    assert not again.done()  # acknowledged: never sent again
    await stop(again)
    await live.aclose()
    row = await store.event(event_id)
    assert row is not None
    assert row.delivered


async def test_a_subscription_that_could_not_say_goodbye_holds_its_claims_for_the_lease(
    engine: AsyncEngine,
) -> None:
    """A replica that died with the stream open never releases: the lease brings it back."""
    store, clock = GroupStore(engine), ManualClock(T0)
    event_id = await notice(store, "hello")
    assert event_id is not None
    dead = BotEvents(CutOff(engine), clock, poll_seconds=0.05, lease_seconds=60)
    hung = dead.subscribe(0, 1).events()
    assert (await asyncio.wait_for(anext(hung), 10)).text == "hello"
    survivor = BotEvents(store, clock, poll_seconds=0.05, lease_seconds=60)
    back = survivor.stream(0, 1)
    waiting = asyncio.ensure_future(anext(back))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # still leased to the dead replica's subscriber
    clock.advance(timedelta(seconds=61))
    assert (await asyncio.wait_for(waiting, 10)).text == "hello"
    await survivor.ack(event_id, ["m1"], "")
    await hung.aclose()  # its release now finds the event acknowledged: nothing changes
    row = await store.event(event_id)
    assert row is not None
    assert row.delivered
    await back.aclose()


async def test_a_release_never_takes_back_an_event_claimed_since_by_another(
    engine: AsyncEngine,
) -> None:
    store, clock = GroupStore(engine), ManualClock(T0)
    event_id = await notice(store, "hello")
    assert event_id is not None
    events = BotEvents(store, clock, poll_seconds=0.05, lease_seconds=60)
    stale = BotEvents(CutOff(engine), clock, poll_seconds=0.05, lease_seconds=60).subscribe(0, 1)
    stale_events = stale.events()
    assert (await asyncio.wait_for(anext(stale_events), 10)).text == "hello"
    clock.advance(timedelta(seconds=61))  # its lease ran out ...
    fresh = events.stream(0, 1)
    assert await take(fresh, 1) == ["hello"]  # ... and another claimed it
    await stale_events.aclose()  # releases what it held, with its own (stale) lease end
    other = events.stream(0, 1)
    waiting = asyncio.ensure_future(anext(other))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # still the fresh subscriber's
    await stop(waiting)
    await other.aclose()
    await fresh.aclose()


async def test_each_shard_gets_its_guilds(engine: AsyncEngine) -> None:
    store, clock = GroupStore(engine), ManualClock(T0)
    await notice(store, "shard0", guild=str(1 << 23))  # (id >> 22) % 2 == 0
    await notice(store, "shard1", guild=SHARD_1_GUILD)
    events = BotEvents(store, clock, poll_seconds=0.05)
    zero, one = events.stream(0, 2), events.stream(1, 2)
    assert await take(one, 1) == ["shard1"]
    assert await take(zero, 1) == ["shard0"]
    await zero.aclose()
    await one.aclose()


async def test_a_live_stream_keeps_what_it_sent_however_long_the_bot_takes(
    engine: AsyncEngine,
) -> None:
    """A turn whose answer takes minutes (a reasoning model, an image) is sent once: while its
    stream lives, the claim is renewed, so neither another subscriber nor the same stream
    gets it again after the lease."""
    store, clock = GroupStore(engine), ManualClock(T0)
    event_id = await notice(store, "slow")
    assert event_id is not None
    events = BotEvents(store, clock, poll_seconds=0.05, lease_seconds=60)
    posting = events.stream(0, 1)
    assert await take(posting, 1) == ["slow"]
    other = events.stream(0, 1)
    waiting = asyncio.ensure_future(anext(other))
    again = asyncio.ensure_future(anext(posting))
    for _ in range(6):  # three minutes, in steps shorter than the lease
        clock.advance(timedelta(seconds=30))
        await renewed(store, event_id, clock.now() + timedelta(seconds=60))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    assert not again.done()
    await events.ack(event_id, ["m1"], "")
    row = await store.event(event_id)
    assert row is not None
    assert (row.delivered, row.attempts, row.message_ids) == (True, 1, ("m1",))
    for task in (waiting, again):
        await stop(task)
    await other.aclose()
    await posting.aclose()


async def test_an_event_the_bot_leaves_for_later_is_let_go_and_sent_after_the_lease(
    engine: AsyncEngine,
) -> None:
    """AckBotEvent(retry_later): the stream stops holding it, and it comes back after a lease
    (not while the stream lives, which would renew it forever)."""
    store, clock = GroupStore(engine), ManualClock(T0)
    event_id = await notice(store, "later")
    assert event_id is not None
    events = BotEvents(store, clock, poll_seconds=0.05, lease_seconds=60)
    subscription = events.subscribe(0, 1)
    stream = subscription.events()
    assert (await asyncio.wait_for(anext(stream), 10)).text == "later"
    await events.defer(event_id, "UNAVAILABLE")
    assert await subscription.renew() == 0  # no longer this stream's to keep
    clock.advance(timedelta(seconds=61))
    assert (await asyncio.wait_for(anext(stream), 10)).text == "later"
    row = await store.event(event_id)
    assert row is not None
    assert (row.delivered, row.attempts) == (False, 2)
    await stream.aclose()


async def test_an_event_claimed_max_attempts_times_is_dropped_and_logged(
    engine: AsyncEngine,
) -> None:
    """A failure that never passes (or a bot that crashes on the event) does not bring it
    back forever: past MAX_EVENT_ATTEMPTS claims it is dropped, TOO_MANY_ATTEMPTS."""
    store = GroupStore(engine)
    event_id = await notice(store, "poison")
    assert event_id is not None
    lease, now = timedelta(seconds=60), T0
    for attempt in range(1, MAX_EVENT_ATTEMPTS + 1):
        claimed = await store.claim_events(now, lease, 0, 1)
        assert [(e.id, e.attempts) for e in claimed] == [(event_id, attempt)]
        now += lease + timedelta(seconds=1)  # its subscriber went away without a word
    with capture_logs() as logs:
        assert await store.claim_events(now, lease, 0, 1) == []
    row = await store.event(event_id)
    assert row is not None
    assert (row.delivered, row.dropped_reason) == (True, "TOO_MANY_ATTEMPTS")
    assert [(e["event"], e["event_id"]) for e in logs if e["event"] == "events.given_up"] == [
        ("events.given_up", event_id)
    ]


async def test_an_announcement_is_due_by_the_gateways_clock_not_the_databases(
    engine: AsyncEngine, store: GatewayStore
) -> None:
    """The gateway's clock behind the database's (a test's ManualClock, or skew): a notice
    queued now is claimed at once, not when the gateway's clock catches up with Postgres's."""
    behind = ManualClock(datetime(2020, 1, 1, tzinfo=UTC))
    groups = GroupStore(engine, behind)
    notifications = Notifications(groups, [], changelog_url="https://example.org/c")
    await notifications.subscribe(
        await store.upsert_user(ALICE), Location(guild_id="g1", channel_id="c-announce")
    )
    assert await notifications.announce(True, "the gateway speaks") == 1
    events = BotEvents(groups, behind, poll_seconds=0.05, lease_seconds=60)
    stream = events.stream(0, 1)
    try:
        assert await take(stream, 1) == ["the gateway speaks"]
    finally:
        await stream.aclose()
