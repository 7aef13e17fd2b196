"""An answer's usage survives what cuts its reply off: a whole answer whose client goes away
while it is stored (or before its stream ended) is stored all the same (streamed, its usage
the provider's count: a resend replays it, nothing is paid twice); one whose write did not
commit leaves the provider's count as a failed row; and text relayed before inference itself
died (a restart) is estimated, as a cancel's is, unless inference reported it first."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.domain import (
    GenerateEvent,
    GenerationFinished,
    JobAccepted,
    JobStatus,
    Personality,
    ReplyChunk,
    ReplyEvent,
    ReplyRequest,
    Usage,
    UsageSpent,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.runtime.errors import DeadlineExceeded, Unavailable

from .conftest import FakeInference, answer, command

pytestmark = pytest.mark.component

COUNTED = Usage("openrouter", "anthropic/claude-sonnet-4.5", 42, 7)
RESTARTING = Unavailable("inference is restarting", reason="SERVICE_RESTARTING")


async def collect(stream: AsyncIterator[GenerateEvent], into: list[GenerateEvent]) -> None:
    async for event in stream:
        into.append(event)


async def usage_rows(engine: AsyncEngine) -> list[Any]:
    log = t.usage_log.c
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(t.usage_log).order_by(log.id))).all())


async def cancelled_when(started: asyncio.Event, gateway: Gateway) -> list[GenerateEvent]:
    """Runs a Generate and cancels its task (the bot's call cancelled) once `started` is set."""
    events: list[GenerateEvent] = []
    consumer = asyncio.create_task(collect(gateway.generate(command()), events))
    await asyncio.wait_for(started.wait(), 5)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    return events


def slow_finish(store: GatewayStore, writing: asyncio.Event, *, refused: bool = False) -> Any:
    """finish_job after a round trip long enough to be cancelled in (a loaded Postgres)."""
    finish_job = store.finish_job

    async def finish(*args: Any, **kwargs: Any) -> Any:
        writing.set()
        await asyncio.sleep(0.3)
        if refused:
            raise ConnectionResetError("the database went away")
        return await finish_job(*args, **kwargs)

    return finish


@pytest.mark.usefixtures("lilith")
async def test_a_cancel_while_the_answer_is_stored_lands_after_the_write(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inference.script = answer("The moon", " is full.", usage=COUNTED)
    writing = asyncio.Event()
    monkeypatch.setattr(store, "finish_job", slow_finish(store, writing))
    events = await cancelled_when(writing, gateway)

    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert (job.status, job.content) == (JobStatus.STREAMED, "The moon is full.")
    (row,) = await usage_rows(engine)
    assert (row.input_tokens, row.output_tokens) == (42, 7)
    assert (row.failed, row.estimated) == (False, False)
    # The bot asks again: the stored answer is replayed, not paid for a second time.
    monkeypatch.undo()
    again: list[GenerateEvent] = []
    await collect(gateway.generate(command()), again)
    assert isinstance(again[-1], GenerationFinished)
    assert again[-1].content == "The moon is full."
    assert len(inference.requests) == 1
    assert len(await usage_rows(engine)) == 1


@pytest.mark.usefixtures("lilith")
async def test_a_cancel_before_the_whole_answer_s_stream_ended_stores_it(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ReplyFinished came; the client goes away while the gateway waits for the stream's end."""
    finished_sent = asyncio.Event()

    async def held_open(request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        inference.requests.append(request)
        for event in answer("Hello", " there.", usage=COUNTED):
            yield event
        finished_sent.set()
        await asyncio.Event().wait()  # the stream's end never comes

    monkeypatch.setattr(inference, "generate_reply", held_open)
    events = await cancelled_when(finished_sent, gateway)

    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert (job.status, job.content) == (JobStatus.STREAMED, "Hello there.")
    (row,) = await usage_rows(engine)
    assert (row.input_tokens, row.output_tokens, row.failed) == (42, 7, False)


@pytest.mark.usefixtures("lilith")
async def test_a_whole_answer_whose_write_failed_after_a_cancel_is_kept_as_paid(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The write is refused (the database dropped the connection): the job fails
    CLIENT_CANCELLED, and the provider's own count is a failed row, not an estimate."""
    inference.script = answer("The moon", " is full.", usage=COUNTED)
    writing = asyncio.Event()
    monkeypatch.setattr(store, "finish_job", slow_finish(store, writing, refused=True))
    events = await cancelled_when(writing, gateway)

    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    assert job.error is not None
    assert job.error.reason == "CLIENT_CANCELLED"
    (row,) = await usage_rows(engine)
    assert (row.input_tokens, row.output_tokens, row.request_type) == (42, 7, "chat")
    assert (row.failed, row.estimated) == (True, False)


@pytest.mark.usefixtures("lilith")
@pytest.mark.parametrize(
    "error",
    [RESTARTING, DeadlineExceeded("inference took too long", reason="GENERATION_TIMEOUT")],
)
async def test_text_relayed_before_inference_died_is_estimated(
    gateway: Gateway,
    engine: AsyncEngine,
    inference: FakeInference,
    error: Exception,
) -> None:
    text = "The moon is full tonight over the harbour " * 20
    inference.script = [ReplyChunk(text)]
    inference.error = error
    with pytest.raises(type(error)):
        await collect(gateway.generate(command()), [])
    (row,) = await usage_rows(engine)
    config = inference.requests[0].config.config
    assert (row.provider, row.model) == (config.provider, config.model)
    assert (row.input_tokens, row.output_tokens) == (0, math.ceil(len(text) / 4))
    assert (row.request_type, row.failed, row.estimated) == ("chat", True, True)


async def test_text_inference_reported_before_it_failed_is_not_estimated_again(
    gateway: Gateway, engine: AsyncEngine, inference: FakeInference, lilith: Personality
) -> None:
    """A failed reply's meter (the provider's count) came before its error: it is the row."""
    inference.script = [ReplyChunk("The moon is "), UsageSpent((COUNTED,), failed=True)]
    inference.error = RESTARTING
    with pytest.raises(Unavailable):
        await collect(gateway.generate(command()), [])
    (row,) = await usage_rows(engine)
    assert (row.input_tokens, row.output_tokens, row.estimated) == (42, 7, False)


async def test_an_answer_whose_usage_inference_estimated_is_an_estimated_row(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    """A provider that sent no usage chunk: the delivered answer's row says it is estimated
    (not failed), and /usage counts it among the estimates."""
    guessed = Usage("custom", "local/model", 900, 12, estimated=True)
    inference.script = answer("Hello", " there.", usage=guessed)
    await collect(gateway.generate(command()), [])
    admin = AdminStore(store.engine, store.catalog)
    (total,) = await admin.usage_totals(datetime.now(UTC) - timedelta(days=1), None)
    assert (total.requests, total.failed_requests, total.estimated_requests) == (1, 0, 1)
