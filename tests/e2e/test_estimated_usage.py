"""Nothing paid for goes unrecorded, across the mesh: an answer whose stream the provider broke
off mid-way (its usage chunk never came) and an answer its client cancelled mid-way (nothing
more can be sent on the closed stream) are each a usage row paid and not delivered, with
tokens Tzurot estimated (`usage_log.estimated`): inference's estimate of the broken round,
the gateway's of the prompt the provider began answering and the text it relayed before the
cancel. The user's `/usage` counts them. A request the provider refused before answering
(a 401, a 503) was billed to nobody: no row counts it, even when a cancel follows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.e2e import Harness, actor, echo_mesh, request, set_key
from tzurot.testing.postgres import DatabaseFactory
from tzurot.testing.waits import until
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

STORY = " ".join(f"word{i}" for i in range(60))


@dataclass
class Mesh:
    h: Harness
    database: str


@pytest.fixture
async def mesh(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Mesh]:
    database = fresh_database()
    async with echo_mesh(database, tmp_path) as h:
        await set_key(h)
        yield Mesh(h, database)


@dataclass(frozen=True)
class Row:
    job_id: str
    input_tokens: int
    output_tokens: int
    request_type: str
    failed: bool
    estimated: bool


async def usage_rows(database: str) -> list[Row]:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT job_id, input_tokens, output_tokens, request_type, failed, estimated"
                    " FROM core.usage_log ORDER BY id"
                )
            )
            return [Row(str(r[0]), int(r[1]), int(r[2]), str(r[3]), r[4], r[5]) for r in rows]
    finally:
        await engine.dispose()


async def chat_usage(h: Harness) -> tuple[int, int, int]:
    """(requests, failed, estimated) of Alice's chat usage in the last day, as `/usage` reads
    it."""
    reply = await h.bot.GetUsage(gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY))
    (total,) = [t for t in reply.totals if t.request_type == "chat"]
    return total.requests, total.failed_requests, total.estimated_requests


async def test_an_answer_broken_off_mid_stream_is_recorded_estimated(mesh: Mesh) -> None:
    """The connection drops after some words: the error reaches the client, and the round
    is in the usage log, failed and estimated; the message sent again is answered, and its
    answer counted by the provider beside it."""
    provider = mesh.h.provider
    provider.reply = STORY
    provider.drop_after_chunks = 20
    req = request("tell me a story", key="msg-broken")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [event async for event in mesh.h.bot.Generate(req)]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert from_rpc_error(caught.value).reason == "PROVIDER_UNAVAILABLE"
    assert len(provider.chat_requests()) == 1  # begun answering: never asked again

    (broken,) = await usage_rows(mesh.database)
    assert (broken.request_type, broken.failed, broken.estimated) == ("chat", True, True)
    assert broken.input_tokens > 0  # the prompt it was sent
    assert broken.output_tokens >= 20  # twenty words came before the drop
    assert await chat_usage(mesh.h) == (1, 1, 1)

    provider.drop_after_chunks = None  # the bot's resend of the same message
    events = [event async for event in mesh.h.bot.Generate(req)]
    assert events[-1].finished.content == STORY
    broken_again, answered = await usage_rows(mesh.database)
    assert broken_again == broken
    assert answered.job_id == broken.job_id
    assert (answered.failed, answered.estimated) == (False, False)
    assert await chat_usage(mesh.h) == (2, 1, 1)


async def failed_job(h: Harness, job_id: str) -> gw.Job:
    """The job once it reads failed (the gateway notices a cancel asynchronously)."""

    async def failed() -> gw.Job | None:
        job = (await h.cli.GetJobStatus(gw.GetJobStatusRequest(job_id=job_id))).job
        return job if job.status == common.JOB_STATUS_FAILED else None

    job = await until(failed, f"job {job_id} failed", within=30, every=0.05)
    assert job is not None  # until returns a truthy value
    return job


async def test_an_answer_cancelled_mid_stream_is_recorded_estimated(mesh: Mesh) -> None:
    """The bot's Generate is cancelled once text came: the gateway records the prompt
    inference said the provider began answering (PromptSent) and the text it relayed,
    estimated, paid and not delivered."""
    provider = mesh.h.provider
    provider.reply = STORY
    provider.chunk_delay = 0.05
    call = mesh.h.bot.Generate(request("tell me a long story"))
    relayed = ""
    async for event in call:
        if event.HasField("chunk"):
            relayed += event.chunk.text
            if len(relayed) >= 60:
                call.cancel()
                break
    # the gateway notices the cancellation asynchronously
    rows = await until(
        lambda: usage_rows(mesh.database), "the cancel's usage row", within=30, every=0.05
    )
    (cancelled,) = rows
    assert (cancelled.request_type, cancelled.failed, cancelled.estimated) == ("chat", True, True)
    assert cancelled.input_tokens > 0  # the prompt answered: most of what a reply costs
    assert cancelled.output_tokens >= len(relayed) // 4
    assert await chat_usage(mesh.h) == (1, 1, 1)


async def test_a_request_refused_then_cancelled_counts_nothing(mesh: Mesh) -> None:
    """The provider refuses the first request (a 503: asked again) and leaves the second
    silent (it sends only its role chunk); the bot cancels meanwhile. Nobody billed the
    refused request and the provider had begun answering nothing: no usage row (80c27e3,
    which announced each request as it went out, wrote one with the refused prompt)."""
    provider = mesh.h.provider
    provider.reply = STORY
    provider.fail_next(503, retry_after=0)
    provider.stall_next(30.0)
    call = mesh.h.bot.Generate(request("tell me a long story", key="msg-refused"))
    accepted = await call.read()
    assert isinstance(accepted, gw.GenerateResponse)
    assert accepted.HasField("accepted")
    # refused, then sent again (and silent)
    await until(lambda: len(provider.chat_requests()) == 2, "the request sent again", within=30)
    await asyncio.sleep(0.3)  # the refusal's events, had there been any, reached the gateway
    call.cancel()
    job = await failed_job(mesh.h, accepted.accepted.job_id)
    assert job.error.reason == "CLIENT_CANCELLED"
    await asyncio.sleep(0.3)  # the cancel's usage write runs beside its failure's
    assert await usage_rows(mesh.database) == []


async def test_a_request_the_provider_refused_with_401_counts_nothing(mesh: Mesh) -> None:
    """The key refused (401) before any answer: the reply fails, and no usage row is
    written for a request nobody billed."""
    mesh.h.provider.fail_next(401)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [e async for e in mesh.h.bot.Generate(request("hello?", key="msg-401"))]
    assert from_rpc_error(caught.value).reason == "INVALID_API_KEY"
    await asyncio.sleep(0.3)  # any write of the failure's usage has ended
    assert await usage_rows(mesh.database) == []
