"""An answer whose bot died mid-answer, of a personality deleted since (by its owner, or an
operator): the user it answered is told so once, in the messages that showed half of it,
in no personality's voice, and nothing is posted as the deleted personality.

Its deletion used to leave the half answer as it was, for good: its events were dropped when
claimed (PERSONALITY_DELETING) or cascaded with its row, its job was deleted as in flight (a
later sweep had nothing to hand over) or, failed, stayed for every later sweep to fail on
(its event named the deleted row), and a sweep's regeneration under way lost its job with no
word. Now the deletion hands each such answer over withheld (PERSONALITY_DELETED) before it
drops the answers in flight, a claim withholds one handed over whole before, the events
stay, naming no personality, once its row is gone, and the sweep hands over one an earlier
deletion left. Real Postgres for `core`.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor, JobStatus, Personality, UnfinishedAnswer
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.testing.waits import until

from .conftest import UNFINISHED_AFTER, FakeInference, FakeKeyVault, FakeMemory, sweeping_gateway
from .test_unfinished_of_deleting_user import (
    PREVIEW,
    answered_unconfirmed,
    cancelled_mid_answer,
    claimed,
    her_deletion_begins,
    rows_naming,
    withheld,
)

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")


@pytest.fixture
def gateway(sweeping: Gateway) -> Gateway:
    return sweeping


async def bobs_finch(gateway: Gateway, store: GatewayStore) -> Personality:
    """Bob's public personality, which Alice talks to."""
    bob = await gateway.user(BOB)
    finch, _ = await store.import_personality(
        PersonalitySeed(name="Finch", public=True), owner_user_id=bob.id
    )
    return finch


async def bob_deletes_finch(gateway: Gateway, admin: Admin) -> None:
    await admin.delete_personality(Principal(await gateway.user(BOB)), "finch")


def deleted(job_id: str) -> UnfinishedAnswer:
    return UnfinishedAnswer(
        job_id=job_id,
        content="",
        preview_message_ids=PREVIEW,
        failed_reason="PERSONALITY_DELETED",
        failed_message="this personality was deleted, so this answer stops here; it answers "
        "no one now",
    )


async def test_her_half_shown_answers_outlive_the_personality_its_owner_deleted(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    inference: FakeInference,
    engine: AsyncEngine,
    memory: FakeMemory,
) -> None:
    """One answer whole but unconfirmed, one cut off mid-answer: both handed to the bot
    withheld, naming no personality; Finch's other events go with it (its free-will turn is
    not posted)."""
    finch = await bobs_finch(gateway, store)
    streamed = await answered_unconfirmed(gateway, "msg-1", "finch")
    cancelled = await cancelled_mid_answer(gateway, inference, "msg-2", "finch")
    turn = await gateway.group_store.add_event(
        {"kind": "turn", "channel_id": "channel-1", "personality_id": finch.id}
    )

    await bob_deletes_finch(gateway, admin)

    assert await rows_naming(engine, finch.id) == {"personalities": 0, "bot_events": 0}
    assert await store.get_job(streamed) is None  # dropped as in flight
    handed = {str(event.job_id): event for event in await claimed(gateway)}
    assert set(handed) == {streamed, cancelled}  # not the turn: gone with Finch
    assert turn not in {event.id for event in handed.values()}
    for job_id, event in handed.items():
        assert event.personality_id is None
        assert await gateway.unfinished_answer(event) == deleted(job_id)
        await gateway.acknowledge_event(event.id, list(PREVIEW), "")  # the bot said why
    assert memory.exchanges == []
    assert len(inference.requests) == 2  # neither generated again
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    # Told once; and the failed job, which stays, no longer fails the sweep (its event would
    # name a personality whose row is gone).
    assert await gateway.finish_unfinished_answers() == 0


async def test_an_answer_handed_over_whole_is_withheld_while_its_personality_is_deleted(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory
) -> None:
    """Handed to the bot whole, then Finch's deletion began (it answers nobody from then on)
    before a bot took it: shown withheld, not dropped PERSONALITY_DELETING with Finch's
    other events, and its acknowledgement delivers nothing."""
    finch = await bobs_finch(gateway, store)
    job_id = await answered_unconfirmed(gateway, "msg-1", "finch")
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1
    await AdminStore(store.engine, store.catalog).mark_personality_deleting(finch.id, 60)

    (event,) = await claimed(gateway)
    shown = await gateway.unfinished_answer(event)
    await gateway.acknowledge_event(event.id, list(PREVIEW), "")

    assert shown == deleted(job_id)
    job = await store.get_job(job_id)
    assert job is not None
    assert job.status is JobStatus.STREAMED  # not delivered
    assert memory.exchanges == []


async def test_an_answer_being_generated_again_when_its_personality_is_deleted_says_so(
    gateway: Gateway, store: GatewayStore, admin: Admin, inference: FakeInference
) -> None:
    """Its bot died mid-answer and the sweep is generating it again (no bot waits for that
    run): the deletion takes its job, the run stops, and the half answer is handed over."""
    await bobs_finch(gateway, store)
    job_id = await cancelled_mid_answer(gateway, inference, "msg-1", "finch")
    inference.gate = asyncio.Event()  # the regeneration's inference call waits
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 0
    regenerations = set(gateway._background)

    async def running() -> bool:  # the regeneration is running (its job claimed again)
        job = await store.get_job(job_id)
        return job is not None and job.status is JobStatus.RUNNING

    await until(running, "the sweep's regeneration started", within=30, every=0.02)

    await bob_deletes_finch(gateway, admin)
    inference.gate.set()
    await asyncio.wait(regenerations, timeout=10)

    assert [task.exception() for task in regenerations] == [None]  # stopped, quietly
    assert await store.get_job(job_id) is None
    (event,) = await claimed(gateway)
    assert event.personality_id is None
    assert await gateway.unfinished_answer(event) == deleted(job_id)


async def test_her_answer_of_a_personality_deleted_while_her_deletion_runs_says_hers_is(
    gateway: Gateway, store: GatewayStore, admin: Admin
) -> None:
    """Both deletions under way: the answer is withheld for hers (as any answer to her is),
    the reason the event keeps once Finch is gone."""
    await bobs_finch(gateway, store)
    job_id = await answered_unconfirmed(gateway, "msg-1", "finch")
    await her_deletion_begins(gateway, store)

    await bob_deletes_finch(gateway, admin)

    (event,) = await claimed(gateway)
    assert event.personality_id is None
    assert await gateway.unfinished_answer(event) == withheld(job_id)


async def test_a_half_answer_its_personalitys_deletion_left_unexplained_is_handed_over(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, engine: AsyncEngine
) -> None:
    """A deletion that did not hand the answer over (before it did so) left its failed job
    showing a preview: the sweep hands it over withheld, naming no personality, instead of
    failing on it every time (its event named a row that is gone: a foreign key violation,
    and every newer unfinished answer waited behind it)."""
    finch = await bobs_finch(gateway, store)
    left = await cancelled_mid_answer(gateway, inference, "msg-1", "finch")
    async with engine.begin() as conn:  # what such a deletion did: the row went, the job stayed
        await conn.execute(sa.delete(t.personalities).where(t.personalities.c.id == finch.id))
    await asyncio.sleep(2 * UNFINISHED_AFTER)

    assert await gateway.finish_unfinished_answers() == 1

    (event,) = await claimed(gateway)
    assert (event.job_id, event.personality_id) == (left, None)
    assert await gateway.unfinished_answer(event) == deleted(left)
    assert len(inference.requests) == 1  # not generated again


async def test_a_half_answer_explained_before_its_personality_is_deleted_is_not_again(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    inference: FakeInference,
    engine: AsyncEngine,
) -> None:
    """Cut off, generated again and failed for good, handed over and shown as cut off (the
    bot acknowledged it), weeks before Finch is deleted: its event stays, naming no
    personality, as the record that it was handed over, so no later sweep edits that preview
    a second time."""
    await bobs_finch(gateway, store)
    job_id = await cancelled_mid_answer(gateway, inference, "msg-1", "finch")
    inference.script = []  # the regeneration fails: shown as cut off
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    await gateway.finish_unfinished_answers()
    events = await until(
        lambda: claimed(gateway), "the failed answer was handed over", within=30, every=0.05
    )
    (event,) = events
    assert event.job_id == job_id
    await gateway.acknowledge_event(event.id, list(PREVIEW), "")

    await bob_deletes_finch(gateway, admin)
    await asyncio.sleep(2 * UNFINISHED_AFTER)

    assert await gateway.finish_unfinished_answers() == 0
    assert await claimed(gateway) == []
    e = g.bot_events.c
    async with engine.connect() as conn:
        kept = (
            await conn.execute(
                sa.select(e.personality_id, e.delivered_at).where(e.job_id == job_id)
            )
        ).one()
    assert kept.personality_id is None
    assert kept.delivered_at is not None


async def test_a_half_answer_older_than_the_sweeps_reach_is_left_as_it_is(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    engine: AsyncEngine,
) -> None:
    """An answer abandoned longer ago than `unfinished_max_age_seconds` (the sweep was down,
    or a backlog behind a row it failed on): the conversation moved on, so it is left as it
    is (nor would one cut off be generated again on the user's key)."""
    # A reach of 2 s: the recent answer stays within it on a loaded machine (0.3 s is tight).
    gateway = sweeping_gateway(store, inference, memory, keyvault, unfinished_max_age_seconds=2.0)
    await bobs_finch(gateway, store)
    old = await answered_unconfirmed(gateway, "msg-1", "finch")
    await asyncio.sleep(2.2)
    recent = await answered_unconfirmed(gateway, "msg-2", "finch")
    await asyncio.sleep(2 * UNFINISHED_AFTER)

    assert await gateway.finish_unfinished_answers() == 1

    (event,) = await claimed(gateway)
    assert event.job_id == recent
    assert len(inference.requests) == 2  # neither generated again
    assert (await store.get_job(old)) is not None  # left as it is


HEADER = "-# ↪ **Alice** hello Finch · https://discord.com/channels/1/2/3\n"


async def test_an_answer_withheld_for_its_personalitys_deletion_keeps_its_reply_header(
    gateway: Gateway, store: GatewayStore
) -> None:
    """The refusal goes where the answer was, under the quote of the message it answered
    (kept with the preview, as for any hand-over)."""
    finch = await bobs_finch(gateway, store)
    job_id = await answered_unconfirmed(gateway, "msg-1", "finch")
    await gateway.note_preview(job_id, list(PREVIEW), HEADER)
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1
    await AdminStore(store.engine, store.catalog).mark_personality_deleting(finch.id, 60)
    (event,) = await claimed(gateway)
    assert await gateway.unfinished_answer(event) == dataclasses.replace(
        deleted(job_id), reply_header=HEADER
    )
