"""The bot event outbox's retention on real Postgres: an event acknowledged longer ago than the
retention is deleted, unless its row is still needed (a release note's dedup key, a hand-over
of a job still undelivered, a greeting's while activated or its history pending, a tombstone
younger than the retention), and deleting never makes an event be sent again, nor a job be
handed to the bot a second time. Before, every row was kept for good.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.changelog import Release
from tzurot.gateway.clock import ManualClock, SystemClock
from tzurot.gateway.domain import JobAccepted, JobStatus, Location, Personality
from tzurot.gateway.events import BotEvents
from tzurot.gateway.group_store import BotEventRow, GroupStore
from tzurot.gateway.notifications import Notifications
from tzurot.gateway.outbox_retention import START, OutboxRetention, drop_statement
from tzurot.gateway.outbox_store import HISTORY_PENDING, HISTORY_STORED
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore

from .conftest import ALICE, LIMITS, UNFINISHED_AFTER, command

pytestmark = pytest.mark.component

RETENTION_DAYS = 7
RETENTION = RETENTION_DAYS * 86_400.0
OLD = RETENTION_DAYS + 1
"""Days since the acknowledgement of an event past the retention."""
HERE = Location(guild_id="guild-1", channel_id="channel-1")


@pytest.fixture
def gateway(sweeping: Gateway) -> Gateway:
    return sweeping


def test_the_gateways_retention_is_the_default() -> None:
    assert LIMITS.bot_events_retention_seconds == RETENTION


async def sweep(engine: AsyncEngine) -> int:
    """One whole pass (a fresh replica's first), as the gateway's sweeps run it."""
    return await OutboxRetention(engine, SystemClock(), RETENTION).drop_old_bot_events()


async def acknowledged_days_ago(engine: AsyncEngine, event_id: str, days: float) -> None:
    e = g.bot_events.c
    async with engine.begin() as conn:
        ago = sa.func.now() - timedelta(days=days)
        await conn.execute(
            sa.update(g.bot_events)
            .where(e.id == event_id)
            .values(delivered_at=ago, created_at=sa.func.least(e.created_at, ago))
        )


async def queued_days_ago(engine: AsyncEngine, event_id: str, days: float) -> None:
    e = g.bot_events.c
    async with engine.begin() as conn:
        ago = sa.func.now() - timedelta(days=days)
        await conn.execute(
            sa.update(g.bot_events).where(e.id == event_id).values(created_at=ago, available_at=ago)
        )


async def rows(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return {str(i) for i in await conn.scalars(sa.select(g.bot_events.c.id))}


async def announcement(store: GroupStore, text: str) -> str:
    added = await store.add_event(
        {"kind": "notice", "notice_kind": "announcement", "text": text, "channel_id": "c1"}
    )
    assert added is not None
    return added


async def greeting(store: GroupStore, personality: Personality, channel: str, n: int = 0) -> str:
    """A greeting of `personality` in `channel`, for its activation `a<n>` there."""
    added = await store.add_event(
        {
            "kind": "greeting",
            "dedup_key": f"greeting:{channel}:{personality.id}:a{n}",
            "channel_id": channel,
            "personality_id": personality.id,
            "reason": f"greeting {n}",
            "text": "hi",
        }
    )
    assert added is not None
    return added


async def activate(engine: AsyncEngine, personality: Personality, channel: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(t.channel_activations).values(
                channel_id=channel, guild_id="guild-1", personality_id=personality.id
            )
        )


async def next_event(stream: AsyncGenerator[BotEventRow, None], wait: float) -> BotEventRow | None:
    try:
        return await asyncio.wait_for(anext(stream), wait)
    except TimeoutError:
        return None


async def test_only_events_acknowledged_past_the_retention_go_and_none_is_sent_again(
    engine: AsyncEngine,
) -> None:
    store, clock = GroupStore(engine), ManualClock()
    posted, dropped, recent = [await announcement(store, n) for n in ("p", "d", "r")]
    waiting = await announcement(store, "waiting")  # never handed out: queued long ago
    held = await announcement(store, "held")  # handed out, never acknowledged
    for event_id, message_ids, why in ((posted, ["m1"], ""), (dropped, [], "CHANNEL_GONE")):
        assert await store.ack_event(event_id, message_ids, why, clock.now())
        await acknowledged_days_ago(engine, event_id, OLD)
    assert await store.ack_event(recent, ["m2"], "", clock.now())
    await acknowledged_days_ago(engine, recent, RETENTION_DAYS - 1)
    await queued_days_ago(engine, waiting, 30)
    await queued_days_ago(engine, held, 30)
    events = BotEvents(store, clock, poll_seconds=0.05, lease_seconds=60)
    holder = events.stream(0, 1)
    handed = {(await asyncio.wait_for(anext(holder), 10)).id for _ in range(2)}
    assert handed == {waiting, held}
    await holder.aclose()  # gone without acknowledging: both are handed out again

    assert await sweep(engine) == 2

    assert await rows(engine) == {recent, waiting, held}
    # Nothing deleted comes back, and what was never acknowledged is still sent, once.
    stream = events.stream(0, 1)
    got = [await next_event(stream, 10), await next_event(stream, 10)]
    assert {event.id for event in got if event is not None} == {waiting, held}
    for event in got:
        assert event is not None
        await events.ack(event.id, ["m3"], "")
    assert await next_event(stream, 0.3) is None
    await stream.aclose()
    assert await sweep(engine) == 0  # acknowledged now: not past the retention


async def test_the_gateways_own_sweeps_delete_them(gateway: Gateway, engine: AsyncEngine) -> None:
    """The retention runs with the gateway's other sweeps (job_upkeep.run_sweeps), which stop
    with the gateway."""
    store = gateway.group_store
    old = await announcement(store, "old")
    assert await store.ack_event(old, ["m1"], "", gateway.clock.now())
    await acknowledged_days_ago(engine, old, OLD)

    sweeps = asyncio.create_task(gateway.run_sweeps(0.05))
    try:
        for _ in range(200):
            if old not in await rows(engine):
                break
            await asyncio.sleep(0.05)
        assert old not in await rows(engine)
    finally:
        sweeps.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeps


async def test_the_retention_is_counted_on_the_gateways_clock(engine: AsyncEngine) -> None:
    """The clock that acknowledges events (a test's moves only when told)."""
    store, clock = GroupStore(engine), ManualClock()
    event_id = await announcement(store, "now")
    assert await store.ack_event(event_id, ["m1"], "", clock.now())
    retention = OutboxRetention(engine, clock, RETENTION, pass_seconds=0)
    clock.advance(timedelta(days=RETENTION_DAYS, seconds=-1))
    assert await retention.drop_old_bot_events() == 0
    clock.advance(timedelta(seconds=2))
    assert await retention.drop_old_bot_events() == 1


async def test_a_release_notes_row_is_kept_for_good_so_it_is_never_announced_twice(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    store = gateway.group_store
    first = Release("1.0.0", "2026-01-01", "### Added\n- the first")
    second = Release("1.1.0", "2026-02-01", "### Added\n- the second")
    running_first = Notifications(store, [first], changelog_url="https://example.org/c")
    running_second = Notifications(store, [second, first], changelog_url="https://example.org/c")
    await running_first.subscribe(await gateway.user(ALICE), HERE)
    assert await running_second.announce_release() == 1
    (note,) = await rows(engine)
    await gateway.acknowledge_event(note, ["m1"], "")
    await acknowledged_days_ago(engine, note, 400)

    assert await sweep(engine) == 0
    assert await rows(engine) == {note}
    # Rolled back to the first release, then forward again: its note was posted already.
    await running_first.announce_release()
    assert await running_second.announce_release() == 0


async def test_a_greeting_is_kept_while_its_personality_is_activated_or_its_history_pending(
    engine: AsyncEngine, lilith: Personality
) -> None:
    store, clock = GroupStore(engine), ManualClock()

    async def posted(channel: str, history: str) -> str:
        event_id = await greeting(store, lilith, channel)
        assert await store.ack_event(event_id, ["m1"], "", clock.now())
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(g.bot_events)
                .where(g.bot_events.c.id == event_id)
                .values(history_status=history)
            )
        await acknowledged_days_ago(engine, event_id, OLD)
        return event_id

    await activate(engine, lilith, "channel-1")
    activated = await posted("channel-1", HISTORY_STORED)
    pending = await posted("channel-2", HISTORY_PENDING)
    await posted("channel-3", HISTORY_STORED)  # not activated there any more, stored

    assert await sweep(engine) == 1
    assert await rows(engine) == {activated, pending}
    # Activating it there again (the same activation) greets nobody a second time.
    again = {"kind": "greeting", "channel_id": "channel-1", "personality_id": lilith.id}
    assert (
        await store.add_event(again | {"dedup_key": f"greeting:channel-1:{lilith.id}:a0"}) is None
    )

    async with engine.begin() as conn:
        await conn.execute(sa.delete(t.channel_activations))  # deactivated
        await conn.execute(
            sa.update(g.bot_events)
            .where(g.bot_events.c.id == pending)
            .values(history_status=HISTORY_STORED)
        )
    assert await sweep(engine) == 2
    assert await rows(engine) == set()


async def answered_unconfirmed(gateway: Gateway, key: str) -> str:
    """A whole answer shown as a preview whose bot died before confirming it; its job id."""
    stream = gateway.generate(command(key=key))
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    async for _ in stream:
        pass
    await gateway.note_preview(accepted.job_id, ["900"])
    return accepted.job_id


async def handed_over(gateway: Gateway, engine: AsyncEngine) -> dict[str, BotEventRow]:
    """The `unfinished` events, by job id."""
    e = g.bot_events.c
    async with engine.connect() as conn:
        ids = (await conn.scalars(sa.select(e.id).where(e.kind == "unfinished"))).all()
    found = [await gateway.group_store.event(str(i)) for i in ids]
    return {str(event.job_id): event for event in found if event is not None}


async def test_a_hand_over_goes_once_its_job_is_delivered_never_while_it_could_be_handed_again(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    """The bot finished one abandoned answer (its job delivered) and could not show the other
    (dropped, its job still undelivered): only the first's row goes; the sweep, which hands
    over any job without one, hands neither over again."""
    finished = await answered_unconfirmed(gateway, "msg-1")
    unshown = await answered_unconfirmed(gateway, "msg-2")
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 2
    events = await handed_over(gateway, engine)
    await gateway.acknowledge_event(events[finished].id, ["900"], "")
    await gateway.acknowledge_event(events[unshown].id, [], "CHANNEL_GONE")
    delivered = await store.get_job(finished)
    assert delivered is not None
    assert delivered.status is JobStatus.DELIVERED
    for event in events.values():
        await acknowledged_days_ago(engine, event.id, OLD)

    dropped = await sweep(engine)

    assert await gateway.finish_unfinished_answers() == 0  # neither handed over twice
    assert dropped == 1
    assert set(await handed_over(gateway, engine)) == {unshown}


async def test_a_tombstone_goes_only_past_the_retention(
    gateway: Gateway, store: GatewayStore, admin: Admin, engine: AsyncEngine, lilith: Personality
) -> None:
    """Her answers shown withheld after her data went are blanked tombstones: the one younger
    than the retention (longer than the sweep's reach) still stops a sweep that read her job
    before it went; the older one, whose job no sweep can read any more, goes."""
    young_job = await answered_unconfirmed(gateway, "msg-1")
    old_job = await answered_unconfirmed(gateway, "msg-2")
    read_before = {found.job.id: found.job for found in await store.unfinished_jobs(0.0, 3600.0)}
    assert set(read_before) == {young_job, old_job}
    await admin.delete_user_data(Principal(await gateway.user(ALICE)))
    events = await handed_over(gateway, engine)
    for event in events.values():
        await gateway.acknowledge_event(event.id, ["900"], "")  # shown: blanked, no job
    blanked = (await handed_over(gateway, engine)).values()
    assert all(event.location.channel_id == "" for event in blanked)
    await acknowledged_days_ago(engine, events[young_job].id, RETENTION_DAYS - 1)
    await acknowledged_days_ago(engine, events[old_job].id, OLD)

    assert await sweep(engine) == 1

    assert set(await handed_over(gateway, engine)) == {young_job}
    assert await gateway._hand_to_bot(read_before[young_job]) == 0  # the stale list: once
    assert await gateway.finish_unfinished_answers() == 0


async def test_a_pass_goes_on_from_where_it_stopped_a_few_batches_a_sweep(
    engine: AsyncEngine, lilith: Personality
) -> None:
    """Rows kept at the oldest end are walked once a pass, not once a batch; a pass left
    unfinished goes on at the next sweep, and the next pass waits its turn."""
    store, clock = GroupStore(engine), ManualClock()
    # The oldest: greetings of a personality activated there.
    kept = [await greeting(store, lilith, "channel-1", n) for n in range(3)]
    await activate(engine, lilith, "channel-1")
    old = [await announcement(store, f"old {n}") for n in range(5)]
    for age, event_id in enumerate(kept + old):
        assert await store.ack_event(event_id, ["m"], "", clock.now())
        await acknowledged_days_ago(engine, event_id, 100 - age)
    retention = OutboxRetention(engine, SystemClock(), RETENTION, batch=2, batches_per_sweep=2)

    assert await retention.drop_old_bot_events() == 1  # walked the 3 kept and 1 old
    assert await retention.drop_old_bot_events() == 4  # went on: walked the other 4 old
    assert await retention.drop_old_bot_events() == 0  # walked none: the pass is done
    stale = await announcement(store, "stale")
    assert await store.ack_event(stale, ["m"], "", clock.now())
    await acknowledged_days_ago(engine, stale, OLD)
    assert await retention.drop_old_bot_events() == 0  # the next pass is not due
    assert await rows(engine) == set(kept) | {stale}
    again = OutboxRetention(
        engine, SystemClock(), RETENTION, batch=2, batches_per_sweep=1, pass_seconds=0
    )
    assert await again.drop_old_bot_events() == 0  # walked 2 of the kept: more to walk
    assert await again.drop_old_bot_events() == 1  # the last kept, then the stale one


async def test_a_batch_passes_over_rows_another_transaction_holds(engine: AsyncEngine) -> None:
    """A user's data deletion blanks her hand-overs and deletes her events in a transaction of
    its own: a batch takes no lock it would wait for (they would wait for each other's,
    locked in opposite orders: a deadlock); the row held goes at a later pass. A batch used
    to wait for it, its own rows locked meanwhile."""
    store, clock = GroupStore(engine), ManualClock()
    old = [await announcement(store, f"old {n}") for n in range(3)]
    for event_id in old:
        assert await store.ack_event(event_id, ["m"], "", clock.now())
        await acknowledged_days_ago(engine, event_id, OLD)
    e = g.bot_events.c
    async with engine.connect() as holder:
        async with holder.begin():
            await holder.execute(sa.update(g.bot_events).where(e.id == old[1]).values(text=""))
            assert await asyncio.wait_for(sweep(engine), 5) == 2
        assert await rows(engine) == {old[1]}
    again = OutboxRetention(engine, SystemClock(), RETENTION, pass_seconds=0)
    assert await again.drop_old_bot_events() == 1
    assert await rows(engine) == set()


async def test_a_batch_walks_the_retention_index(engine: AsyncEngine) -> None:
    """One statement a batch, through `bot_events_delivered_idx` (its partial predicate is
    proven from the statement's own literals), whatever the table's size."""
    compiled = drop_statement().compile(dialect=engine.dialect)
    params = compiled.params | {
        "before": datetime.now(UTC) - timedelta(seconds=RETENTION),
        "after_at": START.delivered_at,
        "after_id": START.id,
        "batch": 500,
    }
    args = [params[name] for name in compiled.positiontup or ()]
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None
        async with raw.transaction():
            await raw.execute("set local enable_seqscan = off")
            plan = "\n".join(r[0] for r in await raw.fetch(f"explain {compiled.string}", *args))
    assert "bot_events_delivered_idx" in plan, plan
