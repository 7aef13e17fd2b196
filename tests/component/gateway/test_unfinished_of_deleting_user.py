"""An answer whose bot died mid-answer, of a user who asked for her data to be deleted
meanwhile: it is not posted (nothing is answered while her deletion runs, as her messages are
refused USER_DATA_DELETING), and she is told so once, in the messages that showed half of it.

The restarted bot used to get the whole answer while her deletion was under way (posted and
delivered, for a user being forgotten), and nothing at all once it had finished: her deletion
removed the job, so nothing knew of the half answer left in her channel, and an event handed
before then broke the bot's event stream (its job not found) until it was given up. Now the
sweep hands her answer over withheld (no answer, the refusal's words, not generated again),
her deletion hands over each such answer of hers before it removes her jobs (the event keeps
the preview's message ids), and the acknowledgement of a withheld answer delivers nothing.
When the answer was her own private personality's, which her deletion deletes, it used to
go with it (the personality's drop of its answers in flight, its events dropped by the claim
and cascading with its row): now it is handed over and kept, naming no personality.
Real Postgres for `core`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import JobAccepted, JobStatus, Personality, UnfinishedAnswer
from tzurot.gateway.outbox_store import BotEventRow
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore

from .conftest import ALICE, UNFINISHED_AFTER, FakeInference, FakeMemory, command

pytestmark = pytest.mark.component

PREVIEW = ("900", "901")


@pytest.fixture
def gateway(sweeping: Gateway) -> Gateway:
    return sweeping


async def answered_unconfirmed(
    gateway: Gateway, key: str = "msg-1", personality: str = "lilith"
) -> str:
    """A whole answer shown as PREVIEW whose bot died before confirming it; its job id."""
    stream = gateway.generate(command(key=key, personality=personality))
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    async for _ in stream:
        pass
    await gateway.note_preview(accepted.job_id, list(PREVIEW))
    return accepted.job_id


async def cancelled_mid_answer(
    gateway: Gateway, inference: FakeInference, key: str = "msg-1", personality: str = "lilith"
) -> str:
    """Its bot showed PREVIEW, then died mid-answer (CLIENT_CANCELLED); the job id."""
    inference.gate = asyncio.Event()
    stream = gateway.generate(command(key=key, personality=personality))
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    await anext(stream)
    await gateway.note_preview(accepted.job_id, list(PREVIEW))
    await stream.aclose()
    inference.gate.set()
    inference.gate = None
    return accepted.job_id


async def her_deletion_begins(gateway: Gateway, store: GatewayStore) -> None:
    """Marked, and left under way (its request held, or cut short for the sweep)."""
    alice = await gateway.user(ALICE)
    await AdminStore(store.engine, store.catalog).mark_user_deleting(alice.id, 60)


async def unfinished_events(gateway: Gateway, engine: AsyncEngine) -> list[BotEventRow]:
    e = g.bot_events.c
    async with engine.connect() as conn:
        ids = (await conn.execute(sa.select(e.id).where(e.kind == "unfinished"))).scalars()
        found = [await gateway.group_store.event(str(i)) for i in ids]
    return [event for event in found if event is not None]


def withheld(job_id: str) -> UnfinishedAnswer:
    return UnfinishedAnswer(
        job_id=job_id,
        content="",
        preview_message_ids=PREVIEW,
        failed_reason="USER_DATA_DELETING",
        failed_message="your data is being deleted, as you asked; until that has finished "
        "(usually within minutes, up to a day while ElevenLabs cannot be reached to delete "
        "cloned voices) nothing you send is answered or kept",
    )


async def test_her_answer_left_unconfirmed_while_her_deletion_runs_is_withheld(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: FakeMemory,
    lilith: Personality,
) -> None:
    job_id = await answered_unconfirmed(gateway)
    quote = "-# ↪ **Alice** hello · https://discord.com/channels/1/2/3\n"
    await gateway.note_preview(job_id, list(PREVIEW), quote)
    await her_deletion_begins(gateway, store)
    await asyncio.sleep(2 * UNFINISHED_AFTER)

    assert await gateway.finish_unfinished_answers() == 1
    (event,) = await unfinished_events(gateway, engine)
    shown = await gateway.unfinished_answer(event)
    await gateway.acknowledge_event(event.id, list(PREVIEW), "")  # the bot showed why

    assert shown == withheld(job_id)  # her message not quoted again (no reply_header)
    job = await store.get_job(job_id)
    assert job is not None
    assert job.status is JobStatus.STREAMED  # not delivered
    assert memory.exchanges == []  # nothing kept
    assert await gateway.finish_unfinished_answers() == 0  # told once


async def test_her_answer_its_dying_bot_cancelled_is_not_generated_again(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    job_id = await cancelled_mid_answer(gateway, inference)
    await her_deletion_begins(gateway, store)
    await asyncio.sleep(2 * UNFINISHED_AFTER)

    assert await gateway.finish_unfinished_answers() == 1
    (event,) = await unfinished_events(gateway, engine)

    assert await gateway.unfinished_answer(event) == withheld(job_id)
    assert len(inference.requests) == 1  # not paid for again
    job = await store.get_job(job_id)
    assert job is not None
    assert job.preview_retried_at is None


async def test_her_finished_deletion_hands_her_half_shown_answer_over_withheld(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    inference: FakeInference,
    engine: AsyncEngine,
    memory: FakeMemory,
    lilith: Personality,
) -> None:
    """Her deletion finished before the sweep saw her answer: it is gone with her jobs, and
    the bot still learns which messages to turn into the notice."""
    streamed = await answered_unconfirmed(gateway)
    # A second answer of hers, cancelled mid-way by her dying bot.
    cancelled = await cancelled_mid_answer(gateway, inference, "msg-2")
    alice = await gateway.user(ALICE)
    read_before = await store.unfinished_jobs(0.0, 3600.0)  # a sweep's list, read just now
    assert {found.job.id for found in read_before} == {streamed, cancelled}

    await admin.delete_user_data(Principal(alice))

    assert await store.get_job(streamed) is None
    events = {str(event.job_id): event for event in await unfinished_events(gateway, engine)}
    assert set(events) == {streamed, cancelled}
    for job_id, event in events.items():
        assert event.payer_user_id is None  # nothing names her
        assert await gateway.unfinished_answer(event) == withheld(job_id)
        await gateway.acknowledge_event(event.id, list(PREVIEW), "")  # no job: nothing to do
    assert memory.exchanges == []
    assert len(inference.requests) == 2
    # Shown, with her jobs gone: nothing of where they were or what they showed is kept;
    # the rows stay as tombstones of their dedup keys.
    assert await blanked(engine) == {streamed: True, cancelled: True}
    # A sweep that read her jobs before they went does not queue them again, and an
    # acknowledgement sent again is still a no-op.
    for job in read_before:
        assert await gateway._hand_to_bot(job.job) == 0
    for event in events.values():
        await gateway.acknowledge_event(event.id, list(PREVIEW), "")
    assert await blanked(engine) == {streamed: True, cancelled: True}


async def test_an_answer_handed_over_before_her_deletion_is_withheld_when_the_bot_takes_it(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: FakeMemory,
    lilith: Personality,
) -> None:
    job_id = await answered_unconfirmed(gateway)
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1  # handed whole: she was not deleting
    await her_deletion_begins(gateway, store)

    (event,) = await unfinished_events(gateway, engine)
    shown = await gateway.unfinished_answer(event)
    await gateway.acknowledge_event(event.id, list(PREVIEW), "")

    assert shown == withheld(job_id)
    job = await store.get_job(job_id)
    assert job is not None
    assert job.status is JobStatus.STREAMED  # the acknowledgement delivered nothing
    assert memory.exchanges == []


async def test_an_answer_handed_over_before_her_deletion_finished_is_withheld_not_lost(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    """Handed whole, then her whole deletion ran before the bot took it: the event was made
    withheld by the deletion, and the bot is told why rather than the stream failing."""
    job_id = await answered_unconfirmed(gateway)
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1
    await admin.delete_user_data(Principal(await gateway.user(ALICE)))

    (event,) = await unfinished_events(gateway, engine)

    assert await gateway.unfinished_answer(event) == withheld(job_id)


async def test_an_event_whose_job_is_gone_otherwise_is_dropped(
    gateway: Gateway, engine: AsyncEngine, lilith: Personality
) -> None:
    job_id = await answered_unconfirmed(gateway)
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1
    async with engine.begin() as conn:
        await conn.execute(sa.delete(t.jobs).where(t.jobs.c.id == job_id))

    (event,) = await unfinished_events(gateway, engine)
    assert await gateway.unfinished_answer(event) is None

    (dropped,) = await unfinished_events(gateway, engine)
    assert (dropped.delivered, dropped.dropped_reason) == (True, "JOB_NOT_FOUND")


# ---- her own private personality's answer: deleted with her, its half answer still told ----

LEASE = timedelta(seconds=60)


async def her_private_wren(gateway: Gateway, store: GatewayStore) -> Personality:
    alice = await gateway.user(ALICE)
    wren, _ = await store.import_personality(
        PersonalitySeed(name="Wren", public=False), owner_user_id=alice.id
    )
    return wren


async def claimed(gateway: Gateway) -> list[BotEventRow]:
    """What a bot's stream is handed now (anything dropped instead is not)."""
    return await gateway.group_store.claim_events(gateway.clock.now(), LEASE, 0, 1)


async def rows_naming(engine: AsyncEngine, personality_id: str) -> dict[str, int]:
    """The personality's row and the bot events that still name it."""
    p, e = t.personalities.c, g.bot_events.c
    async with engine.connect() as conn:
        return {
            "personalities": int(
                await conn.scalar(sa.select(sa.func.count()).where(p.id == personality_id)) or 0
            ),
            "bot_events": int(
                await conn.scalar(
                    sa.select(sa.func.count()).where(e.personality_id == personality_id)
                )
                or 0
            ),
        }


async def test_her_half_shown_answers_outlive_her_private_personality_withheld(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    inference: FakeInference,
    engine: AsyncEngine,
    memory: FakeMemory,
) -> None:
    """The answers were her own private personality's, which her deletion deletes in the
    transaction that hands them over: they used to go with its row (their events cascaded),
    and the bot was given nothing to say in the half answers left in her channel. They stay,
    naming no personality, and nothing else of it does (its free-will turn is not posted)."""
    wren = await her_private_wren(gateway, store)
    streamed = await answered_unconfirmed(gateway, "msg-1", "wren")
    cancelled = await cancelled_mid_answer(gateway, inference, "msg-2", "wren")
    turn = await gateway.group_store.add_event(
        {"kind": "turn", "channel_id": "channel-1", "personality_id": wren.id}
    )

    await admin.delete_user_data(Principal(await gateway.user(ALICE)))

    assert await rows_naming(engine, wren.id) == {"personalities": 0, "bot_events": 0}
    handed = {str(event.job_id): event for event in await claimed(gateway)}
    assert set(handed) == {streamed, cancelled}  # not the turn: gone with Wren
    assert turn not in {event.id for event in handed.values()}
    for job_id, event in handed.items():
        assert (event.personality_id, event.payer_user_id) == (None, None)
        assert await gateway.unfinished_answer(event) == withheld(job_id)
        await gateway.acknowledge_event(event.id, list(PREVIEW), "")  # the bot showed why
    assert memory.exchanges == []
    assert len(inference.requests) == 2  # neither generated again


async def test_her_private_personalitys_half_answer_is_withheld_while_her_deletion_runs(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine
) -> None:
    """Her deletion marked Wren with her (found by no lookup now): its events are dropped
    when claimed, PERSONALITY_DELETING, but not her half answer, which is handed to the bot
    withheld, without Wren (the bot says why in its own words)."""
    wren = await her_private_wren(gateway, store)
    job_id = await answered_unconfirmed(gateway, "msg-1", "wren")
    await her_deletion_begins(gateway, store)
    await asyncio.sleep(2 * UNFINISHED_AFTER)

    assert await gateway.finish_unfinished_answers() == 1
    (event,) = await claimed(gateway)

    assert await gateway.personality_by_id(wren.id) is None  # so the bot gets none
    assert await gateway.unfinished_answer(event) == withheld(job_id)


async def test_her_private_personalitys_answer_handed_whole_before_her_deletion_is_withheld(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine
) -> None:
    """Handed to the bot whole, then her deletion began before a bot took it: shown withheld
    rather than dropped with Wren's other events."""
    await her_private_wren(gateway, store)
    job_id = await answered_unconfirmed(gateway, "msg-1", "wren")
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1
    await her_deletion_begins(gateway, store)

    (event,) = await claimed(gateway)

    assert await gateway.unfinished_answer(event) == withheld(job_id)


async def test_her_withheld_answer_outlives_a_personality_deleted_meanwhile(
    gateway: Gateway, store: GatewayStore, admin: Admin, engine: AsyncEngine, lilith: Personality
) -> None:
    """Any deletion of a personality keeps the answers it withholds from users being deleted
    (here the operator deletes Lilith while Alice's deletion runs): its other events go."""
    job_id = await answered_unconfirmed(gateway)
    await her_deletion_begins(gateway, store)
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1

    await admin.delete_personality(Principal(None), "lilith")

    assert await rows_naming(engine, lilith.id) == {"personalities": 0, "bot_events": 0}
    (event,) = await claimed(gateway)
    assert event.personality_id is None
    assert await gateway.unfinished_answer(event) == withheld(job_id)


async def blanked(engine: AsyncEngine) -> dict[str, bool]:
    """Each `unfinished` event's job id, and whether nothing of where it was and what it
    showed is left on it."""
    e = g.bot_events.c
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(e.job_id, e.channel_id, e.preview_message_ids, e.message_ids).where(
                e.kind == "unfinished"
            )
        )
        return {
            str(r.job_id): (r.channel_id, r.preview_message_ids, r.message_ids) == ("", [], [])
            for r in rows
        }


async def test_her_answers_shown_after_a_bots_death_leave_no_record_once_her_data_is_deleted(
    gateway: Gateway,
    admin: Admin,
    *,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    """An answer of hers a dead bot left, handed over and shown long ago: its event is the
    record that stops a sweep handing it over again, which her deletion (her jobs gone) no
    longer needs, so it goes with her data."""
    job_id = await answered_unconfirmed(gateway)
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1
    (event,) = await claimed(gateway)
    await gateway.acknowledge_event(event.id, list(PREVIEW), "")  # shown: delivered

    await admin.delete_user_data(Principal(await gateway.user(ALICE)))

    assert await blanked(engine) == {job_id: True}
