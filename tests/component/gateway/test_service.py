"""Gateway use-cases against real Postgres, with in-memory fakes of inference/memory/keyvault."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import delivery_flow
from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import (
    Actor,
    Attachment,
    ConfigSource,
    GenerateEvent,
    GenerationFinished,
    HistoryTurn,
    JobAccepted,
    JobError,
    JobStatus,
    Location,
    Personality,
    ReplyChunk,
)
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore, NewJob
from tzurot.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TzurotError,
    Unavailable,
)

from .conftest import (
    ALICE,
    LIMITS,
    MAX_MESSAGE_CHARS,
    USAGE,
    FakeInference,
    FakeKeyVault,
    FakeMemory,
    answer,
    command,
)
from .heartbeat_support import heartbeats, lease_lost

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")
# Deliberately not shaped like any vendor key, so only its absence (not the redactor) passes.
PLANTED = "plantedKEYzq7Wm3Xv9Rt2Lp8Ny4"


async def collect(
    stream: AsyncIterator[GenerateEvent], into: list[GenerateEvent] | None = None
) -> list[GenerateEvent]:
    """Every event of the stream; `into` keeps those received before an error."""
    events = [] if into is None else into
    async for event in stream:
        events.append(event)
    return events


async def job_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(t.jobs)) or 0)


# ---- generate ----


async def test_generate_streams_accepted_chunks_then_finished(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    lilith: Personality,
) -> None:
    events = await collect(gateway.generate(command()))

    accepted, *chunks, finished = events
    assert isinstance(accepted, JobAccepted)
    assert (accepted.personality, accepted.replayed) == (lilith, False)
    assert chunks == [ReplyChunk("Hello"), ReplyChunk(", "), ReplyChunk("mortal.")]
    assert finished == GenerationFinished(
        job_id=accepted.job_id, content="Hello, mortal.", usage=USAGE, finish_reason="stop"
    )

    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert (job.status, job.content, job.usage, job.attempts) == (
        JobStatus.STREAMED,
        "Hello, mortal.",
        USAGE,
        1,
    )
    assert (job.idempotency_key, job.channel_id, job.request_message_ids) == (
        "msg-1",
        "channel-1",
        ("msg-1",),
    )
    assert job.error is None
    async with engine.connect() as conn:
        [usage] = (await conn.execute(sa.select(t.usage_log))).all()
    assert (usage.job_id, usage.input_tokens, usage.output_tokens) == (job.id, 42, 7)

    [request] = inference.requests
    assert (request.job_id, request.user_id, request.content) == (
        job.id,
        job.user_id,
        "Hello Lilith",
    )
    assert request.personality == lilith
    assert request.config.source is ConfigSource.PERSONALITY
    assert (request.config.config.provider, request.config.config.model) == (
        "openrouter",
        "anthropic/claude-sonnet-4.5",
    )
    assert (request.timezone, request.max_history_messages) == ("UTC", 30)


async def test_personality_without_llm_uses_the_global_default(
    gateway: Gateway, store: GatewayStore, inference: FakeInference
) -> None:
    await store.import_personality(PersonalitySeed(name="Plain"), owner_user_id=None)
    await collect(gateway.generate(command(personality="plain")))
    [request] = inference.requests
    assert request.config.source is ConfigSource.GLOBAL
    assert request.config.config.model == "openai/gpt-4o-mini"


async def test_reasoning_only_when_asked(
    gateway: Gateway, inference: FakeInference, lilith: Personality
) -> None:
    inference.script = answer("Yes.", reasoning="Because.")
    *_, plain = await collect(gateway.generate(command(key="a")))
    *_, asked = await collect(gateway.generate(command(key="b", show_reasoning=True)))
    assert isinstance(plain, GenerationFinished)
    assert isinstance(asked, GenerationFinished)
    assert (plain.reasoning, asked.reasoning) == ("", "Because.")


async def test_thread_is_the_conversation(
    gateway: Gateway, store: GatewayStore, lilith: Personality
) -> None:
    location = Location(guild_id="g", channel_id="parent", thread_id="thread-9")
    accepted, *_ = await collect(gateway.generate(command(location=location)))
    assert isinstance(accepted, JobAccepted)
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.channel_id == "thread-9"


async def test_attachment_only_message_is_accepted(
    gateway: Gateway, inference: FakeInference, lilith: Personality
) -> None:
    image = Attachment(url="https://cdn.example/cat.png", content_type="image/png")
    await collect(gateway.generate(command("", attachments=(image,))))
    assert inference.requests[0].attachments == (image,)


# ---- delivery ----


async def test_confirm_delivery_stores_the_exchange_once(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, lilith: Personality
) -> None:
    accepted, *_ = await collect(gateway.generate(command()))
    assert isinstance(accepted, JobAccepted)

    delivered = await gateway.confirm_delivery(accepted.job_id, ["answer-1", "answer-2"])
    assert delivered.status is JobStatus.DELIVERED
    assert delivered.delivered_message_ids == ("answer-1", "answer-2")
    assert delivered.delivered_at is not None

    [exchange] = memory.exchanges
    assert (exchange.job_id, exchange.conversation_id, exchange.personality_id) == (
        accepted.job_id,
        "channel-1",
        lilith.id,
    )
    assert exchange.user_id == delivered.user_id
    assert exchange.turns == (
        HistoryTurn("user", ALICE.platform_user_id, "Alice", "Hello Lilith", ("msg-1",)),
        HistoryTurn("assistant", "lilith", "Lilith", "Hello, mortal.", ("answer-1", "answer-2")),
    )

    again = await gateway.confirm_delivery(accepted.job_id, ["answer-1", "answer-2"])
    assert again == delivered
    assert len(memory.exchanges) == 1


async def test_a_delivery_while_memory_is_away_is_stored_in_history_once_memory_is_back(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, lilith: Personality
) -> None:
    accepted, *_ = await collect(gateway.generate(command()))
    assert isinstance(accepted, JobAccepted)
    memory.error = Unavailable("memory is down")
    # The user saw the answer: the delivery is recorded, not refused.
    pending = await gateway.confirm_delivery(accepted.job_id, ["answer-1"])
    assert pending.status is JobStatus.STREAMED
    assert pending.delivered_message_ids == ("answer-1",)
    assert await gateway.store_pending_history() == 0  # memory still away: kept for later
    assert memory.exchanges == []

    memory.error = None
    assert await gateway.store_pending_history() == 1
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.status is JobStatus.DELIVERED
    assert len(memory.exchanges) == 1
    # A late ConfirmDelivery from a retrying client changes nothing.
    assert (await gateway.confirm_delivery(accepted.job_id, ["answer-1"])).status is (
        JobStatus.DELIVERED
    )
    assert len(memory.exchanges) == 1


async def test_every_pending_delivery_is_stored_a_page_at_a_time_past_one_that_fails(
    gateway: Gateway,
    store: GatewayStore,
    memory: FakeMemory,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory was away for more deliveries than a page: one sweep stores them all, and the
    oldest, which memory refuses for good, is passed over, not in the way."""
    memory.error = Unavailable("memory is down")
    jobs = []
    for n in range(delivery_flow.PENDING_HISTORY_PAGE + 2):
        accepted, *_ = await collect(gateway.generate(command(f"message {n}", key=f"msg-{n}")))
        assert isinstance(accepted, JobAccepted)
        await gateway.confirm_delivery(accepted.job_id, [f"answer-{n}"])
        jobs.append(accepted.job_id)
    memory.error = None
    store_exchange = memory.store_exchange

    async def refusing_the_oldest(*, job_id: str, **fields: Any) -> None:
        if job_id == jobs[0]:
            raise FailedPrecondition("its personality is gone")
        await store_exchange(job_id=job_id, **fields)

    monkeypatch.setattr(memory, "store_exchange", refusing_the_oldest)
    assert await gateway.store_pending_history() == len(jobs) - 1
    assert sorted(e.job_id for e in memory.exchanges) == sorted(jobs[1:])
    assert await gateway.store_pending_history() == 0  # nothing new was noted since


async def test_a_history_refused_for_good_is_marked_and_not_tried_again(
    *,
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory refuses a late exchange for good: the job keeps that refusal as its error and
    no later sweep (this process's, or a restarted one's) tries it, or logs it, again."""
    accepted, *_ = await collect(gateway.generate(command()))
    assert isinstance(accepted, JobAccepted)
    memory.error = Unavailable("memory is down")
    await gateway.confirm_delivery(accepted.job_id, ["answer-1"])
    memory.error = None
    tried: list[str] = []
    store_exchange = memory.store_exchange

    async def refusing_it(*, job_id: str, **fields: Any) -> None:
        tried.append(job_id)
        if job_id == accepted.job_id:
            raise InvalidArgument("turns", "an exchange memory cannot take")
        await store_exchange(job_id=job_id, **fields)

    monkeypatch.setattr(memory, "store_exchange", refusing_it)
    with structlog.testing.capture_logs() as logs:
        assert await gateway.store_pending_history() == 0
        restarted = Gateway(
            store=store, inference=inference, memory=memory, keyvault=keyvault, limits=LIMITS
        )
        assert await restarted.store_pending_history() == 0
    assert tried == [accepted.job_id]
    assert [e["event"] for e in logs if e["event"].startswith("job.history")] == [
        "job.history_refused"
    ]
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert (job.status, job.delivered_message_ids) == (JobStatus.STREAMED, ("answer-1",))
    assert job.error is not None
    assert (job.error.code, job.error.message) == (
        "INVALID_ARGUMENT",
        "an exchange memory cannot take",
    )


@pytest.mark.parametrize(
    "outage",
    [
        Unavailable("memory is down"),
        TzurotError("memory took too long", code=grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
async def test_a_late_history_is_swept_again_while_memory_is_away(
    gateway: Gateway,
    store: GatewayStore,
    memory: FakeMemory,
    lilith: Personality,
    outage: TzurotError,
) -> None:
    accepted, *_ = await collect(gateway.generate(command()))
    assert isinstance(accepted, JobAccepted)
    memory.error = Unavailable("memory is down")
    await gateway.confirm_delivery(accepted.job_id, ["answer-1"])
    memory.error = outage
    assert await gateway.store_pending_history() == 0
    memory.error = None
    assert await gateway.store_pending_history() == 1  # the next sweep, in the same process
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert (job.status, job.error) == (JobStatus.DELIVERED, None)


async def test_concurrent_confirmations_of_a_job_count_its_activity_once(
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two ConfirmDelivery calls for one job (a bot's retry racing its first call) both find
    it streamed and both store its exchange (memory keeps it once, by job id); only the one
    that delivers the job counts it toward consolidation."""
    limits = dataclasses.replace(LIMITS, consolidate_every=100)
    gateway = Gateway(
        store=store, inference=inference, memory=memory, keyvault=keyvault, limits=limits
    )
    accepted, *_ = await collect(gateway.generate(command()))
    assert isinstance(accepted, JobAccepted)
    both_confirming = asyncio.Barrier(2)
    store_exchange = memory.store_exchange

    async def together(**fields: Any) -> None:
        await both_confirming.wait()  # both have read the job streamed by now
        await store_exchange(**fields)

    monkeypatch.setattr(memory, "store_exchange", together)
    first, second = await asyncio.wait_for(
        asyncio.gather(
            gateway.confirm_delivery(accepted.job_id, ["answer-1"]),
            gateway.confirm_delivery(accepted.job_id, ["answer-1"]),
        ),
        5,
    )
    assert first.status is second.status is JobStatus.DELIVERED
    async with engine.connect() as conn:
        counted = await conn.scalar(
            sa.select(g.activity_counters.c.value).where(
                g.activity_counters.c.name == delivery_flow.ACTIVITY_COUNTER
            )
        )
    assert counted == 1


async def test_a_job_finished_before_its_stream_is_cancelled_stays_finished(
    gateway: Gateway, store: GatewayStore, lilith: Personality, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client goes away just after the answer and its usage are stored: the job is
    finished, not failed-retryable (which would ask the provider, and charge, again)."""
    finish_job = store.finish_job

    async def then_cancelled(*args: Any, **kwargs: Any) -> Any:
        await finish_job(*args, **kwargs)
        raise asyncio.CancelledError

    monkeypatch.setattr(store, "finish_job", then_cancelled)
    events: list[GenerateEvent] = []
    with pytest.raises(asyncio.CancelledError):
        await collect(gateway.generate(command()), events)
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.status is JobStatus.STREAMED
    assert job.content == "Hello, mortal."
    assert job.error is None
    # A resend of the message replays the answer; it is not generated again.
    monkeypatch.setattr(store, "finish_job", finish_job)
    replayed = await collect(gateway.generate(command()))
    assert isinstance(replayed[0], JobAccepted)
    assert replayed[0].replayed


async def test_confirm_delivery_of_unknown_or_unfinished_jobs(
    gateway: Gateway, inference: FakeInference, lilith: Personality
) -> None:
    with pytest.raises(InvalidArgument) as invalid:
        await gateway.confirm_delivery("not-a-job", [])
    assert invalid.value.field == "job_id"
    with pytest.raises(NotFound) as missing:
        await gateway.confirm_delivery("00000000-0000-0000-0000-000000000000", [])
    assert missing.value.reason == "JOB_NOT_FOUND"

    inference.error = Unavailable("provider down", reason="PROVIDER_UNAVAILABLE")
    inference.script = []
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    with pytest.raises(Unavailable):
        await anext(stream)
    with pytest.raises(FailedPrecondition) as failed:
        await gateway.confirm_delivery(accepted.job_id, ["answer-1"])
    assert failed.value.reason == "JOB_NOT_STREAMED"


# ---- idempotency ----


async def test_duplicate_after_completion_replays_without_inference(
    gateway: Gateway, inference: FakeInference, engine: AsyncEngine, lilith: Personality
) -> None:
    first = await collect(gateway.generate(command()))
    second = await collect(gateway.generate(command()))
    accepted = first[0]
    assert isinstance(accepted, JobAccepted)
    assert second == [
        JobAccepted(job_id=accepted.job_id, personality=lilith, replayed=True),
        ReplyChunk("Hello, mortal."),
        GenerationFinished(
            job_id=accepted.job_id, content="Hello, mortal.", usage=USAGE, finish_reason="stop"
        ),
    ]
    await gateway.confirm_delivery(accepted.job_id, ["answer-1"])
    third = await collect(gateway.generate(command()))
    assert third == second
    assert len(inference.requests) == 1
    assert await job_count(engine) == 1


async def test_duplicate_while_running_waits_for_the_original(
    gateway: Gateway, inference: FakeInference, lilith: Personality
) -> None:
    inference.gate = asyncio.Event()
    original = asyncio.create_task(collect(gateway.generate(command())))
    await asyncio.wait_for(inference.first_event_sent.wait(), 5)
    duplicate = asyncio.create_task(collect(gateway.generate(command())))
    await asyncio.sleep(0.3)
    assert not duplicate.done()
    inference.gate.set()
    first, second = await asyncio.wait_for(asyncio.gather(original, duplicate), 10)
    assert isinstance(second[0], JobAccepted)
    assert second[0].replayed is True
    assert second[-1] == first[-1]
    assert len(inference.requests) == 1


async def test_concurrent_duplicates_generate_once(
    gateway: Gateway, inference: FakeInference, lilith: Personality
) -> None:
    results = await asyncio.wait_for(
        asyncio.gather(*(collect(gateway.generate(command())) for _ in range(3))), 10
    )
    assert len(inference.requests) == 1
    replayed = [r[0].replayed for r in results if isinstance(r[0], JobAccepted)]
    assert sorted(replayed) == [False, True, True]
    assert {r[-1] for r in results} == {results[0][-1]}


async def test_duplicate_of_a_job_failed_for_good_repeats_its_error(
    gateway: Gateway, inference: FakeInference, lilith: Personality
) -> None:
    inference.script = []
    inference.error = FailedPrecondition("no API key for openrouter", reason="NO_API_KEY")
    with pytest.raises(FailedPrecondition):
        await collect(gateway.generate(command()))
    with pytest.raises(FailedPrecondition) as again:
        await collect(gateway.generate(command()))
    assert (again.value.reason, again.value.message) == (
        "NO_API_KEY",
        "no API key for openrouter",
    )
    assert len(inference.requests) == 1


@pytest.mark.parametrize(
    "error",
    [
        Unavailable("openrouter is unreachable", reason="PROVIDER_UNAVAILABLE"),
        TzurotError("took too long", code=grpc.StatusCode.DEADLINE_EXCEEDED),
    ],
)
async def test_a_retry_of_a_job_failed_for_a_passing_reason_runs_it_again(
    gateway: Gateway,
    *,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
    error: TzurotError,
) -> None:
    inference.script = []
    inference.error = error
    with pytest.raises(TzurotError):
        await collect(gateway.generate(command()))
    inference.script, inference.error = answer("Back again."), None

    accepted, *_, finished = await collect(gateway.generate(command()))

    assert isinstance(accepted, JobAccepted)
    assert accepted.replayed is False
    assert isinstance(finished, GenerationFinished)
    assert finished.content == "Back again."
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert (job.status, job.attempts, job.error) == (JobStatus.STREAMED, 2, None)
    assert len(inference.requests) == 2
    assert await job_count(engine) == 1


async def test_a_retry_after_the_client_cancelled_runs_the_job_again(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    inference.gate = asyncio.Event()
    stream = gateway.generate(command())
    accepted = await anext(stream)
    await anext(stream)
    await stream.aclose()  # the client went away mid-answer
    inference.gate.set()
    assert isinstance(accepted, JobAccepted)
    failed = await store.get_job(accepted.job_id)
    assert failed is not None
    assert failed.error is not None
    assert failed.error.code == "CANCELLED"

    events = await collect(gateway.generate(command()))

    assert events[-1] == GenerationFinished(
        job_id=accepted.job_id, content="Hello, mortal.", usage=USAGE, finish_reason="stop"
    )


async def test_a_job_abandoned_while_running_is_taken_over_after_its_lease(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    # A gateway claimed the job, started it, and died: the row says running, nobody runs it.
    user = await gateway.user(ALICE)
    job, claimed = await store.claim_job(
        NewJob(
            idempotency_key="msg-1",
            user_id=user.id,
            personality_id=lilith.id,
            guild_id="guild-1",
            channel_id="channel-1",
            request_content="Hello Lilith",
            request_message_ids=["msg-1"],
            author_id=ALICE.platform_user_id,
            author_name="Alice",
        ),
        lease_seconds=60,
    )
    assert claimed
    await store.start_attempt(job.id)
    async with engine.begin() as conn:  # its last heartbeat was long ago
        await conn.execute(
            sa.update(t.jobs)
            .where(t.jobs.c.id == job.id)
            .values(heartbeat_at=sa.func.now() - sa.text("interval '10 minutes'"))
        )

    events = await asyncio.wait_for(collect(gateway.generate(command())), 5)

    assert isinstance(events[0], JobAccepted)
    assert events[0].replayed is False
    assert events[0].job_id == job.id
    done = await store.get_job(job.id)
    assert done is not None
    assert (done.status, done.attempts) == (JobStatus.STREAMED, 2)
    assert len(inference.requests) == 1


async def test_a_run_whose_job_was_taken_over_stops_and_writes_nothing(
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mid-answer, another run takes the job over (this one's lease ran out in a long
    Postgres failover): this run's next heartbeat finds it, the stream ends JOB_TAKEN_OVER
    at its next event, and neither its answer nor a failure is written: only the text it
    relayed, which the provider billed, as an estimate paid but not delivered."""
    limits = dataclasses.replace(LIMITS, job_lease_seconds=0.4)  # a heartbeat every 0.1 s
    gateway = Gateway(
        store=store, inference=inference, memory=memory, keyvault=keyvault, limits=limits
    )
    inference.gate = asyncio.Event()
    events: list[GenerateEvent] = []
    run = asyncio.create_task(collect(gateway.generate(command()), events))
    await asyncio.wait_for(inference.first_event_sent.wait(), 5)
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    beats = heartbeats(store, monkeypatch)
    async with engine.begin() as conn:  # another run claimed it: attempt 2
        await conn.execute(
            sa.update(t.jobs)
            .where(t.jobs.c.id == accepted.job_id)
            .values(attempts=t.jobs.c.attempts + 1)
        )
    await lease_lost(beats)
    inference.gate.set()
    with pytest.raises(FailedPrecondition) as taken:
        await asyncio.wait_for(run, 5)
    assert taken.value.reason == "JOB_TAKEN_OVER"
    assert inference.streams_closed == 1
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert (job.status, job.attempts, job.error, job.content) == (JobStatus.RUNNING, 2, None, "")
    u = t.usage_log.c
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(u.input_tokens, u.failed, u.estimated))).all()
    assert [tuple(row) for row in rows] == [(0, True, True)]


async def test_a_job_that_stops_before_it_runs_is_failed_retryably_not_left_running(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Claimed (`running`), then recording its group round fails: a resend must not wait
    out the lease; it runs the job at once."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(gateway.groups, "record_job", broken)
    with pytest.raises(RuntimeError):
        await collect(gateway.generate(command()))
    job = await store.get_job_by_key("msg-1")
    assert job is not None
    assert (job.status, job.error) == (
        JobStatus.FAILED,
        JobError("CANCELLED", "NOT_STARTED", "the job stopped before it started"),
    )
    monkeypatch.undo()
    events = await asyncio.wait_for(collect(gateway.generate(command())), 5)
    assert isinstance(events[-1], GenerationFinished)
    assert len(inference.requests) == 1


async def test_a_running_job_within_its_lease_is_not_taken_over(
    store: GatewayStore, gateway: Gateway, lilith: Personality
) -> None:
    user = await gateway.user(ALICE)
    new = NewJob(
        idempotency_key="msg-1",
        user_id=user.id,
        personality_id=lilith.id,
        guild_id="",
        channel_id="channel-1",
        request_content="hi",
        request_message_ids=[],
        author_id=ALICE.platform_user_id,
        author_name="Alice",
    )
    job, _ = await store.claim_job(new, lease_seconds=60)
    await store.start_attempt(job.id)
    again, claimed = await store.claim_job(new, lease_seconds=60)
    assert (claimed, again.status) == (False, JobStatus.RUNNING)
    taken, claimed = await store.claim_job(new, lease_seconds=0)
    assert (claimed, taken.status, taken.attempts) == (True, JobStatus.QUEUED, 1)


async def test_a_key_reused_by_another_user_or_personality_is_refused(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    await store.import_personality(PersonalitySeed(name="Sage"), owner_user_id=None)
    await collect(gateway.generate(command()))
    for other in (command(actor=BOB), command(personality="sage")):
        with pytest.raises(AlreadyExists) as caught:
            await collect(gateway.generate(other))
        assert caught.value.reason == "IDEMPOTENCY_KEY_REUSED"
        assert "mortal" not in caught.value.message
    assert len(inference.requests) == 1


# ---- validation ----


async def test_unknown_personality_is_not_found_by_name(
    gateway: Gateway, engine: AsyncEngine, inference: FakeInference, lilith: Personality
) -> None:
    with pytest.raises(NotFound) as caught:
        await collect(gateway.generate(command(personality="Morgana")))
    assert "Morgana" in caught.value.message
    assert caught.value.reason == "PERSONALITY_NOT_FOUND"
    assert inference.requests == []
    assert await job_count(engine) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"content": ""}, "content"),
        ({"content": "   \n\t"}, "content"),
        ({"content": "x" * (MAX_MESSAGE_CHARS + 1)}, "content"),
        ({"key": ""}, "idempotency_key"),
        ({"key": "k" * 201}, "idempotency_key"),
        ({"personality": "  "}, "personality"),
        ({"actor": Actor("", "nobody")}, "actor.user_id"),
        ({"location": Location()}, "location.channel_id"),
    ],
)
@pytest.mark.usefixtures("lilith")
async def test_invalid_messages_name_the_field(
    gateway: Gateway,
    engine: AsyncEngine,
    inference: FakeInference,
    fields: dict[str, Any],
    field: str,
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await collect(gateway.generate(command(**fields)))
    assert caught.value.field == field
    assert inference.requests == []
    assert await job_count(engine) == 0


async def test_message_at_the_limit_is_accepted(gateway: Gateway, lilith: Personality) -> None:
    events = await collect(gateway.generate(command("x" * MAX_MESSAGE_CHARS)))
    assert isinstance(events[-1], GenerationFinished)


async def test_private_personality_only_for_owner_and_superusers(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine
) -> None:
    owner = await store.upsert_user(ALICE)
    await store.import_personality(
        PersonalitySeed(name="Secret", public=False), owner_user_id=owner.id
    )
    events = await collect(gateway.generate(command(personality="secret", key="a")))
    assert isinstance(events[-1], GenerationFinished)
    with pytest.raises(NotFound):
        await collect(gateway.generate(command(personality="secret", key="b", actor=BOB)))
    bob = await store.upsert_user(BOB)
    async with engine.begin() as conn:
        await conn.execute(sa.update(t.users).where(t.users.c.id == bob.id).values(superuser=True))
    events = await collect(gateway.generate(command(personality="secret", key="c", actor=BOB)))
    assert isinstance(events[-1], GenerationFinished)
    assert [p.slug for p in (await gateway.list_personalities(None)).items] == []
    assert [p.slug for p in (await gateway.list_personalities(ALICE)).items] == ["secret"]
    with pytest.raises(NotFound):
        await gateway.get_personality("secret", None)


# ---- failures ----


@pytest.mark.usefixtures("lilith")
async def test_inference_unavailable_fails_the_job(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    memory: FakeMemory,
) -> None:
    inference.script = [ReplyChunk("Hel")]
    inference.error = Unavailable("openrouter is unreachable", reason="PROVIDER_UNAVAILABLE")
    received: list[GenerateEvent] = []
    with pytest.raises(Unavailable) as caught:
        await collect(gateway.generate(command()), into=received)
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    assert received[1:] == [ReplyChunk("Hel")]

    job = await store.get_job_by_key("msg-1")
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.reason, job.error.message) == (
        "UNAVAILABLE",
        "PROVIDER_UNAVAILABLE",
        "openrouter is unreachable",
    )
    assert job.finished_at is not None
    assert memory.exchanges == []
    # No report of the answer's usage came before the error: the text relayed is estimated.
    u = t.usage_log.c
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(u.output_tokens, u.failed, u.estimated))).all()
    assert [tuple(row) for row in rows] == [(1, True, True)]


async def test_inference_without_a_final_answer_fails_the_job(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    inference.script = [ReplyChunk("Hel")]
    with pytest.raises(FailedPrecondition) as caught:
        await collect(gateway.generate(command()))
    assert caught.value.reason == "NO_ANSWER"
    job = await store.get_job_by_key("msg-1")
    assert job is not None
    assert job.status is JobStatus.FAILED


async def test_unexpected_inference_error_fails_the_job(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    inference.script = []
    inference.error = RuntimeError("adapter bug")
    with pytest.raises(RuntimeError):  # the server interceptor reports it as INTERNAL
        await collect(gateway.generate(command()))
    job = await store.get_job_by_key("msg-1")
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.code == "INTERNAL"
    assert "adapter bug" not in job.error.message


# ---- cancellation ----


async def test_closing_the_stream_mid_answer_fails_the_job_as_cancelled(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    lilith: Personality,
) -> None:
    inference.gate = asyncio.Event()
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    assert await anext(stream) == ReplyChunk("Hello")
    await stream.aclose()  # the client went away

    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.reason) == ("CANCELLED", "CLIENT_CANCELLED")
    assert inference.streams_closed == 1  # inference was told to stop too
    with pytest.raises(FailedPrecondition):
        await gateway.confirm_delivery(job.id, ["answer-1"])
    assert memory.exchanges == []


async def test_cancelling_the_consumer_mid_answer_fails_the_job_as_cancelled(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    lilith: Personality,
) -> None:
    inference.gate = asyncio.Event()
    consumer = asyncio.create_task(collect(gateway.generate(command())))
    await asyncio.wait_for(inference.first_event_sent.wait(), 5)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    job = await store.get_job_by_key("msg-1")
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.reason == "CLIENT_CANCELLED"
    assert inference.streams_closed == 1
    assert memory.exchanges == []


async def test_closing_the_stream_right_after_acceptance_fails_the_job(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    await stream.aclose()

    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED  # not `queued` forever, with duplicates waiting on it
    assert job.error is not None
    assert job.error.reason == "CLIENT_CANCELLED"
    assert inference.requests == []
    # Cancelled is a passing reason: the client's retry runs the job.
    again = await collect(gateway.generate(command()))
    assert again[-1] == GenerationFinished(
        job_id=accepted.job_id, content="Hello, mortal.", usage=USAGE, finish_reason="stop"
    )


async def test_an_unexpected_error_after_acceptance_fails_the_job(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(request: object) -> None:
        raise RuntimeError("the disk is on fire")

    # An unexpected error after the job was accepted.
    monkeypatch.setattr(inference, "generate_reply", broken)
    with pytest.raises(RuntimeError):
        await collect(gateway.generate(command()))
    job = await store.get_job_by_key("msg-1")
    assert job is not None
    assert job.personality_id == lilith.id
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert (job.error.code, job.error.message) == ("INTERNAL", "internal error")
    assert inference.requests == []


# ---- job status ----


async def test_job_status_by_id_or_key(gateway: Gateway, lilith: Personality) -> None:
    accepted, *_ = await collect(gateway.generate(command()))
    assert isinstance(accepted, JobAccepted)
    by_id = await gateway.job_status(job_id=accepted.job_id)
    by_key = await gateway.job_status(idempotency_key="msg-1")
    assert by_id == by_key
    assert by_id.status is JobStatus.STREAMED
    with pytest.raises(InvalidArgument):
        await gateway.job_status()
    with pytest.raises(NotFound):
        await gateway.job_status(idempotency_key="nope")
    with pytest.raises(InvalidArgument):
        await gateway.job_status(job_id="nope")
