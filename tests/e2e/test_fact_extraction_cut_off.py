"""A fact extraction whose call the provider broke off once it began answering, through the
whole mesh: the user's key may have been billed for the prompt and what streamed, and
ExtractFacts fails (its error has no body). Inference puts the call's estimate in the error's
status details; gateway's worker records it before handling the error: a `fact_extraction`
usage_log row, failed and estimated, which `/usage` shows. No facts are stored (the batch
waits for its lease)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.fact_mesh import fact_mesh, usage_rows
from tzurot.bot.commands import render
from tzurot.testing.e2e import Harness, actor, converse, request, set_key
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

ANSWER = "Noted, Alice."
"""Two chunks: streamed whole while streams are dropped after the third."""
FACTS = json.dumps({"facts": [{"text": "Alice lives in Paris, near the canal, with a cat."}]})


def model(body: dict[str, Any]) -> str:
    """Answers an extraction request with facts (many chunks), anything else briefly."""
    return FACTS if "durable facts" in str(body["messages"][0]["content"]) else ANSWER


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with fact_mesh(fresh_database(), tmp_path, model) as harness:
        yield harness


async def until_extraction_row(harness: Harness) -> Any:
    for _ in range(200):
        rows = await usage_rows(harness, "fact_extraction")
        if rows:
            (row,) = rows
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("no fact_extraction usage row was written")


def extraction_calls(harness: Harness) -> int:
    return sum(
        "durable facts" in str(r.body["messages"][0]["content"])
        for r in harness.provider.chat_requests()
    )


async def test_an_extraction_broken_mid_stream_is_in_usage_failed_and_estimated(
    harness: Harness,
) -> None:
    await set_key(harness)
    harness.provider.drop_after_chunks = 3  # the answer (2 chunks) whole, the facts broken
    events, job_id = await converse(harness, request("I live in Paris now, near the canal."))
    assert events[-1].finished.content == ANSWER
    row = await until_extraction_row(harness)
    assert extraction_calls(harness) == 1  # begun: never asked again
    assert (row.job_id, row.provider, row.model) == (job_id, "openrouter", "fake/echo")
    assert row.failed
    assert row.estimated
    assert row.input_tokens > 0
    assert row.output_tokens > 0  # the three chunks received
    reply = await harness.bot.GetUsage(
        gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY)
    )
    extraction = next(u for u in reply.totals if u.request_type == "fact_extraction")
    assert (
        extraction.requests,
        extraction.failed_requests,
        extraction.estimated_requests,
        extraction.input_tokens,
    ) == (1, 1, 1, row.input_tokens)
    assert "(fact extraction): 1 request" in render.usage(reply, "day")
