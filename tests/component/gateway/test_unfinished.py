"""Answers whose bot died mid-stream (issue #14): the gateway knows the preview messages
(NoteAnswerPreview) and, once the job has ended unconfirmed for a while, hands it to the bot
as an `unfinished` event; a job cancelled by its dying bot is generated again first."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway.domain import JobAccepted, JobStatus, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import TzurotError, Unavailable
from tzurot.testing.waits import until

from .conftest import UNFINISHED_AFTER, FakeInference, command

pytestmark = pytest.mark.component


@pytest.fixture
def gateway(sweeping: Gateway) -> Gateway:
    return sweeping


async def _answered(gateway: Gateway, key: str = "msg-1") -> str:
    """A whole streamed answer (the bot has not confirmed it yet); its job id."""
    stream = gateway.generate(command(key=key))
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    async for _ in stream:
        pass
    return accepted.job_id


async def _killed_mid_answer(gateway: Gateway, inference: FakeInference) -> str:
    """The bot showed a preview ("900") of the first chunk, then died: its stream closed
    while inference was held back (`inference.gate`, left unset). The job id."""
    inference.gate = asyncio.Event()
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    await anext(stream)
    await gateway.note_preview(accepted.job_id, ["900"])
    await stream.aclose()  # the bot was killed mid-answer
    return accepted.job_id


async def _unconfirmed_for_long_enough() -> None:
    await asyncio.sleep(2 * UNFINISHED_AFTER)


async def _sweep_until_handed(gateway: Gateway, engine: AsyncEngine) -> list[tuple[str, str, str]]:
    """One sweep (its regeneration runs in the background), then what it handed to the bot
    once that shows."""
    await gateway.finish_unfinished_answers()
    await until(lambda: _handed(engine), "the sweep handed an answer over", within=30, every=0.05)
    return await _handed(engine)


async def _handed(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    e = g.bot_events.c
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(e.kind, e.job_id, e.channel_id).where(e.kind == "unfinished")
        )
        return [(r.kind, str(r.job_id), r.channel_id) for r in rows]


async def _running(store: GatewayStore, job_id: str) -> bool:
    """Whether the job is running (a regeneration claimed it again)."""
    job = await store.get_job(job_id)
    return job is not None and job.status is JobStatus.RUNNING


async def test_a_streamed_answer_left_unconfirmed_is_handed_to_the_bot_once(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    job_id = await _answered(gateway)
    await gateway.note_preview(job_id, ["900", "901"])
    assert (await store.get_job(job_id)).preview_message_ids == ("900", "901")  # type: ignore[union-attr]
    await _unconfirmed_for_long_enough()

    assert await gateway.finish_unfinished_answers() == 1
    assert await _handed(engine) == [("unfinished", job_id, "channel-1")]
    assert await gateway.finish_unfinished_answers() == 0  # once, whatever sweeps again

    # The bot finished it; its acknowledgement delivers the job like ConfirmDelivery.
    delivered = await gateway.confirm_delivery(job_id, ["900", "901"])
    assert delivered.status is JobStatus.DELIVERED


HEADER = "-# ↪ **Alice** tell me a story · https://discord.com/channels/1/2/3\n"


async def test_the_reply_header_noted_with_the_preview_is_handed_over_with_it(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    """So the restarted bot keeps it even when the first preview, which carried it, was
    deleted before it read it (it used to be lost: nothing named it)."""
    job_id = await _answered(gateway)
    await gateway.note_preview(job_id, ["900", "901"], HEADER)
    job = await store.get_job(job_id)
    assert job is not None
    assert job.preview_header == HEADER
    await _unconfirmed_for_long_enough()
    assert await gateway.finish_unfinished_answers() == 1
    (event,) = await gateway.group_store.claim_events(
        gateway.clock.now(), timedelta(seconds=60), 0, 1
    )
    handed = await gateway.unfinished_answer(event)
    assert handed is not None
    assert (handed.reply_header, handed.preview_message_ids) == (HEADER, ("900", "901"))


async def test_a_cleared_preview_clears_its_header_and_a_long_header_is_not_kept(
    gateway: Gateway, store: GatewayStore, lilith: Personality
) -> None:
    job_id = await _answered(gateway)
    await gateway.note_preview(job_id, ["900"], HEADER)
    await gateway.note_preview(job_id, [], HEADER)  # an error is shown there instead
    job = await store.get_job(job_id)
    assert job is not None
    assert (job.preview_message_ids, job.preview_header) == ((), "")
    # Past 500 characters the header is dropped, not the note: the rescue matters more.
    await gateway.note_preview(job_id, ["900"], "x" * 501)
    job = await store.get_job(job_id)
    assert job is not None
    assert (job.preview_message_ids, job.preview_header) == (("900",), "")


async def test_a_confirmed_or_closed_preview_is_left_alone(
    gateway: Gateway, engine: AsyncEngine, lilith: Personality
) -> None:
    confirmed = await _answered(gateway)
    await gateway.note_preview(confirmed, ["900"])
    await gateway.confirm_delivery(confirmed, ["900"])
    closed = await _answered(gateway, key="msg-2")
    await gateway.note_preview(closed, ["910"])
    await gateway.note_preview(closed, [])  # the live bot showed an error there
    await _unconfirmed_for_long_enough()

    assert await gateway.finish_unfinished_answers() == 0
    assert await _handed(engine) == []


async def test_an_answer_its_dying_bot_cancelled_is_generated_again_then_handed_over(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    job_id = await _killed_mid_answer(gateway, inference)
    assert inference.gate is not None
    inference.gate.set()
    cancelled = await store.get_job(job_id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.FAILED
    await _unconfirmed_for_long_enough()

    assert await _sweep_until_handed(gateway, engine) == [("unfinished", job_id, "channel-1")]
    again = await store.get_job(job_id)
    assert again is not None
    assert again.status is JobStatus.STREAMED
    assert again.content == "Hello, mortal."
    assert again.preview_message_ids == ("900",)
    assert await gateway.finish_unfinished_answers() == 0


async def test_a_regeneration_under_way_when_the_gateway_stops_ends_retryable(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    """SIGTERM while the sweep's regeneration waits for inference: stopping cancels it and
    waits for it to end, so it holds no connection when the engine closes; its job ends
    GATEWAY_RESTARTING (retryable), nothing handed to the bot by this process."""
    job_id = await _killed_mid_answer(gateway, inference)
    inference.gate = asyncio.Event()  # the regeneration's inference call waits too
    await _unconfirmed_for_long_enough()
    await gateway.finish_unfinished_answers()
    await until(lambda: _running(store, job_id), "the sweep's regeneration started", within=30)

    gateway.stopping()
    await gateway.stop_background()

    stopped = await store.get_job(job_id)
    assert stopped is not None
    assert stopped.status is JobStatus.FAILED
    assert stopped.error is not None
    assert stopped.error.reason == "GATEWAY_RESTARTING"
    assert await _handed(engine) == []


async def test_stopping_waits_for_background_work_only_so_long(gateway: Gateway) -> None:
    """Background work whose last writes wait on a database that is away does not hold the
    stop past its bound: the jobs' release must still fit the pod's termination grace."""
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()  # its shielded write, waiting on Postgres
            raise

    task = asyncio.create_task(stubborn())
    gateway._background.add(task)
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await gateway.stop_background(wait_seconds=0.2)
    assert loop.time() - started < 2.0
    assert not task.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_one_answer_that_cannot_be_handed_over_does_not_hold_up_the_others(
    gateway: Gateway,
    engine: AsyncEngine,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The oldest abandoned answer's hand-over fails (an unexpected error): the sweep logs it
    and hands the others over; the next sweep hands it over too."""
    stuck = await _answered(gateway, key="msg-1")
    await gateway.note_preview(stuck, ["900"])
    other = await _answered(gateway, key="msg-2")
    await gateway.note_preview(other, ["910"])
    await _unconfirmed_for_long_enough()
    add_event = gateway.group_store.add_event

    async def failing_for_stuck(values: dict[str, object]) -> str | None:
        if values.get("job_id") == stuck:
            raise RuntimeError("poisoned row")
        return await add_event(values)

    monkeypatch.setattr(gateway.group_store, "add_event", failing_for_stuck)
    assert await gateway.finish_unfinished_answers() == 1
    assert await _handed(engine) == [("unfinished", other, "channel-1")]

    monkeypatch.setattr(gateway.group_store, "add_event", add_event)
    assert await gateway.finish_unfinished_answers() == 1
    assert sorted(await _handed(engine)) == sorted(
        [("unfinished", other, "channel-1"), ("unfinished", stuck, "channel-1")]
    )


async def test_note_preview_refuses_what_is_not_a_job(gateway: Gateway) -> None:
    with pytest.raises(TzurotError) as bad:
        await gateway.note_preview("not-a-job", ["1"])
    assert bad.value.code is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(TzurotError) as missing:
        await gateway.note_preview("00000000-0000-0000-0000-000000000000", ["1"])
    assert missing.value.code is grpc.StatusCode.NOT_FOUND


async def test_when_the_answer_cannot_be_generated_again_the_failure_is_handed_over(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    """The bot then turns the preview into the failure notice (the job stays failed: no
    history)."""
    job_id = await _killed_mid_answer(gateway, inference)
    inference.gate = None
    inference.script = []
    inference.error = Unavailable("the provider is down", reason="PROVIDER_UNAVAILABLE")
    await _unconfirmed_for_long_enough()

    assert await _sweep_until_handed(gateway, engine) == [("unfinished", job_id, "channel-1")]
    failed = await store.get_job(job_id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    assert failed.error is not None
    assert failed.error.reason == "PROVIDER_UNAVAILABLE"
    assert failed.preview_retried_at is not None
    assert await gateway.finish_unfinished_answers() == 0  # handed once, not regenerated again


async def test_a_regeneration_its_gateway_never_claimed_is_handed_over_once_its_lease_ends(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    """A gateway that claimed the regeneration and died before running it: the job stays
    failed, its retry unclaimed. Once the retry's lease has run out the sweep hands it to
    the bot as it is (else it would wait for a regeneration that never comes, and stay
    among the sweep's oldest rows for good)."""
    job_id = await _killed_mid_answer(gateway, inference)
    assert inference.gate is not None
    inference.gate.set()
    await _unconfirmed_for_long_enough()
    # A lease of 1 s: the sweep below comes within it on a loaded machine (0.2 s is tight).
    assert await store.claim_preview_retry(job_id, lease_seconds=1.0)  # then it died

    assert await gateway.finish_unfinished_answers() == 0  # its lease still lives
    await asyncio.sleep(1.2)
    assert await gateway.finish_unfinished_answers() == 1
    assert await _handed(engine) == [("unfinished", job_id, "channel-1")]
    failed = await store.get_job(job_id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED
