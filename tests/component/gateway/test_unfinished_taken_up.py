"""A half answer handed over as abandoned while its live bot was asking for it again.

A restart in the mesh (inference dying mid-answer, a rollout stopping the gateway) fails the
job retryably; the bot, still there, sends the same request again and the gateway takes the
same job up again. When the sweep met the failed job (its preview still noted) before that,
it queued an `unfinished` event for it; handed out, the bot would edit "cut off" into the
preview the new generation streams into. Now such an event is deleted when the bot's stream
claims it, never handed out, once its job is taken up again, delivered, or its preview
cleared by the live bot; and, deleted, it does not stop the sweep from handing the answer over
anew should it be abandoned after all. One still abandoned is handed out as before.
Real Postgres for `core`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway.domain import JobAccepted, JobStatus, Personality
from tzurot.gateway.outbox_store import BotEventRow
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import TzurotError, Unavailable
from tzurot.testing.waits import until

from .conftest import UNFINISHED_AFTER, FakeInference, answer, command

pytestmark = pytest.mark.component

PREVIEW = ["900"]
LEASE = timedelta(seconds=60)
INFERENCE_DIED = Unavailable(
    "the inference is restarting; try again in a moment", reason="SERVICE_RESTARTING"
)


@pytest.fixture
def gateway(sweeping: Gateway) -> Gateway:
    return sweeping


async def cut_short_by_a_restart(gateway: Gateway, inference: FakeInference) -> str:
    """Half an answer shown as PREVIEW, then inference died: the job failed retryably."""
    inference.script, inference.error = answer("Once", " upon"), INFERENCE_DIED
    stream = gateway.generate(command(key="msg-1"))
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    await anext(stream)
    await gateway.note_preview(accepted.job_id, PREVIEW)
    with pytest.raises(TzurotError) as raised:
        async for _ in stream:
            pass
    assert raised.value.reason == "SERVICE_RESTARTING"
    inference.error = None
    return accepted.job_id


async def handed_over(gateway: Gateway, engine: AsyncEngine) -> list[str]:
    """The sweep, past UNFINISHED_AFTER: the ids of the `unfinished` events queued."""
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    await gateway.finish_unfinished_answers()
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(g.bot_events.c.id).where(g.bot_events.c.kind == "unfinished")
        )
        return [str(i) for i in rows.scalars()]


async def claimed(gateway: Gateway) -> list[BotEventRow]:
    return await gateway.group_store.claim_events(gateway.clock.now(), LEASE, 0, 1)


async def asked_again(gateway: Gateway, inference: FakeInference) -> str:
    """The live bot sends the same request again: the same job, answered whole."""
    inference.script = answer("Once upon", " a time.")
    events = [event async for event in gateway.generate(command(key="msg-1"))]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    return accepted.job_id


async def test_a_hand_over_of_a_job_its_bot_took_up_again_is_never_handed_out(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    job_id = await cut_short_by_a_restart(gateway, inference)
    assert len(await handed_over(gateway, engine)) == 1  # the sweep met it failed
    inference.gate = asyncio.Event()  # the second generation still streaming
    inference.first_event_sent.clear()
    taking_up = asyncio.create_task(asked_again(gateway, inference))
    await inference.first_event_sent.wait()
    job = await store.get_job(job_id)
    assert job is not None
    assert job.status is JobStatus.RUNNING

    assert await claimed(gateway) == []  # not handed out to the bot
    inference.gate.set()
    assert await taking_up == job_id
    await gateway.confirm_delivery(job_id, PREVIEW)
    assert await handed_over(gateway, engine) == []  # deleted, and nothing queued anew


async def test_one_delivered_before_the_bot_claims_it_is_never_handed_out(
    gateway: Gateway, inference: FakeInference, engine: AsyncEngine, lilith: Personality
) -> None:
    job_id = await cut_short_by_a_restart(gateway, inference)
    assert len(await handed_over(gateway, engine)) == 1
    await asked_again(gateway, inference)
    await gateway.confirm_delivery(job_id, PREVIEW)

    assert await claimed(gateway) == []
    assert await handed_over(gateway, engine) == []


async def test_one_whose_live_bot_cleared_its_preview_is_never_handed_out(
    gateway: Gateway, inference: FakeInference, engine: AsyncEngine, lilith: Personality
) -> None:
    """The bot gave up asking (it shows its error there) after the sweep queued the event."""
    job_id = await cut_short_by_a_restart(gateway, inference)
    assert len(await handed_over(gateway, engine)) == 1
    await gateway.note_preview(job_id, [])

    assert await claimed(gateway) == []


async def test_one_abandoned_after_all_is_handed_over_anew(
    gateway: Gateway, inference: FakeInference, engine: AsyncEngine, lilith: Personality
) -> None:
    """Taken up again, then cut short again with no bot left to ask for it: the deleted
    event does not stand in the way of the hand-over the bot's successor needs."""
    job_id = await cut_short_by_a_restart(gateway, inference)
    assert len(await handed_over(gateway, engine)) == 1
    inference.script, inference.error = answer("Once", " upon"), INFERENCE_DIED
    inference.gate = asyncio.Event()
    inference.first_event_sent.clear()

    async def cut_short_again() -> None:
        with pytest.raises(TzurotError):
            async for _ in gateway.generate(command(key="msg-1")):
                pass

    again = asyncio.create_task(cut_short_again())
    await inference.first_event_sent.wait()
    assert await claimed(gateway) == []  # taken up when claimed: deleted
    inference.gate.set()
    await again
    inference.error = None
    (event_id,) = await handed_over(gateway, engine)  # failed again, its preview still noted
    (event,) = await claimed(gateway)
    assert (event.id, event.job_id) == (event_id, job_id)


async def test_taking_it_up_deletes_the_hand_over_at_once_so_a_bot_dying_then_is_rescued(
    gateway: Gateway, inference: FakeInference, engine: AsyncEngine, lilith: Personality
) -> None:
    """The bot handed the event back for later (it was asking again), then died in the very
    answer it asked for (CLIENT_CANCELLED). The event, deleted when the job was taken up (not
    at its next claim, a lease later), does not stop the sweep from generating the answer
    again and handing it over whole, as for any answer whose bot died."""
    job_id = await cut_short_by_a_restart(gateway, inference)
    assert len(await handed_over(gateway, engine)) == 1
    (event,) = await claimed(gateway)
    await gateway.events.defer(event.id, "ANSWERED_HERE")  # the bot: not abandoned, later

    inference.script = answer("Once upon", " a time.")
    inference.gate = asyncio.Event()
    stream = gateway.generate(command(key="msg-1"))  # the bot asks again
    assert isinstance(await anext(stream), JobAccepted)
    await anext(stream)
    assert await pending_unfinished(engine) == []  # deleted at once
    await stream.aclose()  # ...and dies mid-answer
    inference.gate.set()
    inference.gate = None

    await asyncio.sleep(2 * UNFINISHED_AFTER)
    await gateway.finish_unfinished_answers()  # generated again in the background
    await until(
        lambda: pending_unfinished(engine),
        "the regeneration's answer pending",
        within=30,
        every=0.05,
    )
    (handed,) = await claimed(gateway)
    whole = await gateway.unfinished_answer(handed)
    assert whole is not None
    assert (whole.job_id, whole.content) == (job_id, "Once upon a time.")
    assert len(inference.requests) == 3  # cut short, asked again, generated again


async def pending_unfinished(engine: AsyncEngine) -> list[str]:
    e = g.bot_events.c
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(e.id).where(e.kind == "unfinished", e.delivered_at.is_(None))
        )
        return [str(i) for i in rows.scalars()]


async def test_one_still_abandoned_is_handed_out(
    gateway: Gateway, inference: FakeInference, engine: AsyncEngine, lilith: Personality
) -> None:
    job_id = await cut_short_by_a_restart(gateway, inference)
    (event_id,) = await handed_over(gateway, engine)
    (event,) = await claimed(gateway)
    assert (event.id, event.job_id) == (event_id, job_id)
