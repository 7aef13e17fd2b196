"""Usage whose provider's count never came is recorded as Tzurot's estimate: an answer's round
broken off mid-stream (inference's UsageSpent, failed, estimated) is a usage row with
`estimated`; a reply its client cancelled once the answer began is a row the gateway writes
itself (failed, estimated: input 0, output ~4 characters a token of the text relayed), and
none when nothing was relayed or the answer had finished (its usage is the job's)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.domain import (
    GenerateEvent,
    JobAccepted,
    JobStatus,
    Personality,
    ReplyChunk,
    Usage,
    UsageSpent,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.runtime.errors import Unavailable

from .conftest import FakeInference, answer, command

pytestmark = pytest.mark.component

BROKEN_ROUND = Usage("openrouter", "anthropic/claude-sonnet-4.5", 1800, 37, estimated=True)
DROPPED = Unavailable("openrouter dropped the answer before finishing it; try again later")


async def collect(stream: AsyncIterator[GenerateEvent], into: list[GenerateEvent]) -> None:
    async for event in stream:
        into.append(event)


async def usage_rows(engine: AsyncEngine) -> list[Any]:
    log = t.usage_log.c
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(t.usage_log).order_by(log.id))).all())


async def test_a_round_broken_off_is_an_estimated_failed_row(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    lilith: Personality,
) -> None:
    inference.script = [ReplyChunk("The moon is "), UsageSpent((BROKEN_ROUND,), failed=True)]
    inference.error = DROPPED
    events: list[GenerateEvent] = []
    with pytest.raises(Unavailable):
        await collect(gateway.generate(command()), events)
    (row,) = await usage_rows(engine)
    assert (row.input_tokens, row.output_tokens, row.request_type) == (1800, 37, "chat")
    assert (row.failed, row.estimated) == (True, True)
    # The error came after the estimate: the gateway adds no estimate of its own.
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED


async def test_usage_totals_count_the_estimated_requests(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    """One estimated failed row, one answer counted by the provider: 2 requests, 1 failed,
    1 estimated (an older inference's failed rows are never estimated)."""
    inference.script = [UsageSpent((BROKEN_ROUND,), failed=True)]
    inference.error = DROPPED
    with pytest.raises(Unavailable):
        await collect(gateway.generate(command(key="msg-1")), [])
    counted = Usage("openrouter", "anthropic/claude-sonnet-4.5", 1700, 20)
    inference.script = answer("Hello", ", ", "mortal.", usage=counted)
    inference.error = None
    await collect(gateway.generate(command(key="msg-2")), [])
    admin = AdminStore(store.engine, store.catalog)
    (total,) = await admin.usage_totals(datetime.now(UTC) - timedelta(days=1), None)
    assert (total.requests, total.failed_requests, total.estimated_requests) == (2, 1, 1)
    assert (total.input_tokens, total.output_tokens) == (3500, 57)


async def test_a_reply_cancelled_mid_answer_is_an_estimated_row_of_what_was_relayed(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    lilith: Personality,
) -> None:
    inference.script = answer("The moon is full tonight", " over the harbour", " and")
    inference.gate = asyncio.Event()
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    assert await anext(stream) == ReplyChunk("The moon is full tonight")
    await stream.aclose()  # the client went away: inference's stream is cancelled too

    (row,) = await usage_rows(engine)
    config = inference.requests[0].config.config
    assert (row.job_id, row.provider, row.model) == (accepted.job_id, config.provider, config.model)
    assert (row.input_tokens, row.output_tokens) == (
        0,
        math.ceil(len("The moon is full tonight") / 4),
    )
    assert (row.request_type, row.failed, row.estimated) == ("chat", True, True)
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.error is not None
    assert job.error.reason == "CLIENT_CANCELLED"


async def test_a_cancelled_consumer_task_records_the_estimate_too(
    gateway: Gateway, engine: AsyncEngine, inference: FakeInference, lilith: Personality
) -> None:
    inference.script = answer("Hello there, traveller", ", ", "mortal.")
    inference.gate = asyncio.Event()
    consumer = asyncio.create_task(collect(gateway.generate(command()), []))
    await asyncio.wait_for(inference.first_event_sent.wait(), 5)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    (row,) = await usage_rows(engine)
    assert (row.output_tokens, row.failed, row.estimated) == (6, True, True)


async def test_only_the_text_after_inference_s_own_report_is_estimated(
    gateway: Gateway, engine: AsyncEngine, inference: FakeInference, lilith: Personality
) -> None:
    """Inference reported a broken round (its text counted there); the text relayed after it
    is what the gateway estimates on a cancel."""
    inference.script = [
        ReplyChunk("Counted by inference already"),
        UsageSpent((BROKEN_ROUND,), failed=True),
        ReplyChunk("Then more"),
        ReplyChunk(" never sent"),
    ]
    inference.gate = asyncio.Event()
    stream = gateway.generate(command())
    await anext(stream)  # accepted
    assert await anext(stream) == ReplyChunk("Counted by inference already")
    inference.gate.set()
    assert await anext(stream) == ReplyChunk("Then more")
    inference.gate.clear()
    await stream.aclose()
    inferred, cancelled = await usage_rows(engine)
    assert (inferred.output_tokens, inferred.estimated) == (37, True)
    assert (cancelled.input_tokens, cancelled.output_tokens) == (0, math.ceil(len("Then more") / 4))
    assert (cancelled.failed, cancelled.estimated) == (True, True)


async def test_a_reply_cancelled_before_any_text_writes_no_usage(
    gateway: Gateway, engine: AsyncEngine, inference: FakeInference, lilith: Personality
) -> None:
    stream = gateway.generate(command())
    assert isinstance(await anext(stream), JobAccepted)
    await stream.aclose()
    assert await usage_rows(engine) == []


async def test_a_reply_cancelled_after_its_answer_came_writes_only_the_answer_s_usage(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The answer and its usage are stored, then the client goes away: no estimate besides."""
    finish_job = store.finish_job

    async def then_cancelled(*args: Any, **kwargs: Any) -> Any:
        await finish_job(*args, **kwargs)
        raise asyncio.CancelledError

    monkeypatch.setattr(store, "finish_job", then_cancelled)
    with pytest.raises(asyncio.CancelledError):
        await collect(gateway.generate(command()), [])
    (row,) = await usage_rows(engine)
    assert (row.failed, row.estimated) == (False, False)
