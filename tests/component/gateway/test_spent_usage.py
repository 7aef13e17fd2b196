"""Calls a reply paid for outside its answer's usage (inference's UsageSpent) are usage rows
at once: a failed reply's answer calls (failed, the job's own kind), a skill's paid call (its
own kind, provider and model), each once, whatever becomes of the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
    Usage,
    UsageSpent,
)
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import ResourceExhausted

from .conftest import FakeInference, answer, command

pytestmark = pytest.mark.component

ROUNDS = Usage("openrouter", "anthropic/claude-sonnet-4.5", 900, 40)
IMAGE = Usage(
    "openrouter",
    "google/gemini-2.5-flash-image",
    10,
    1290,
    images=1,
    request_type="image_generation",
)


async def collect(stream: AsyncIterator[GenerateEvent], into: list[GenerateEvent]) -> None:
    async for event in stream:
        into.append(event)


async def usage_rows(engine: AsyncEngine) -> list[Any]:
    log = t.usage_log.c
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(t.usage_log).order_by(log.id))).all())


async def test_a_failed_reply_s_paid_rounds_are_a_failed_usage_row(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    inference: FakeInference,
    lilith: Personality,
) -> None:
    """Round 1 paid (tool calls), round 2 refused (402): no answer, its rounds in /usage."""
    inference.script = [UsageSpent((ROUNDS,), failed=True)]
    inference.error = ResourceExhausted("no credit left", reason="PROVIDER_QUOTA_EXCEEDED")
    events: list[GenerateEvent] = []
    with pytest.raises(ResourceExhausted):
        await collect(gateway.generate(command()), events)
    (accepted,) = events
    assert isinstance(accepted, JobAccepted)
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.status is JobStatus.FAILED
    (row,) = await usage_rows(engine)
    assert (row.job_id, row.user_id) == (job.id, job.user_id)
    assert (row.provider, row.model, row.input_tokens, row.output_tokens) == (
        "openrouter",
        "anthropic/claude-sonnet-4.5",
        900,
        40,
    )
    assert (row.request_type, row.failed) == ("chat", True)  # the job's own kind


async def test_a_skill_s_paid_call_is_a_row_of_its_own_next_to_the_answer_s(
    gateway: Gateway, engine: AsyncEngine, inference: FakeInference, lilith: Personality
) -> None:
    inference.script = [UsageSpent((IMAGE,)), *answer("Here is ", "your moon.")]
    async for _ in gateway.generate(command()):
        pass
    image, reply = await usage_rows(engine)
    assert (image.request_type, image.provider, image.model) == (
        "image_generation",
        "openrouter",
        "google/gemini-2.5-flash-image",
    )
    assert (image.input_tokens, image.output_tokens, image.images, image.failed) == (
        10,
        1290,
        1,
        False,
    )
    assert (reply.request_type, reply.input_tokens, reply.images, reply.failed) == (
        "chat",
        42,
        0,
        False,
    )
