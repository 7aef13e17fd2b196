"""Facts with supersession through the whole mesh: a delivered exchange is queued in memory;
gateway's worker has inference extract facts on the user's key (the fake provider answers
the extraction call with JSON, as a model would) and memory stores them; a later fact that
contradicts one supersedes it (the row stays, superseded_by set) and only the new one reaches
the next prompt. The extraction's call is paid on the user's key: it is a usage_log row of its
own (`fact_extraction`), which `/usage` shows."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.e2e.fact_mesh import fact_mesh, usage_rows
from tzurot.bot.commands import render
from tzurot.db.engine import create_engine
from tzurot.memory.tables import memories
from tzurot.testing.e2e import (
    USER_KEY,
    Harness,
    actor,
    converse,
    request,
    set_key,
)
from tzurot.testing.fake_provider import echo_reply
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

_KNOWN = re.compile(r"^([0-9a-f-]{36}): (.+)$", re.MULTILINE)


def extractor(body: dict[str, Any]) -> str:
    """The model: answers an extraction request with facts, anything else with an echo."""
    system = str(body["messages"][0]["content"])
    if "durable facts" not in system:
        return echo_reply(body)
    said = str(body["messages"][-1]["content"])
    known = {text: memory_id for memory_id, text in _KNOWN.findall(system)}
    facts = []
    if "moved to Berlin" in said:
        old = known.get("Alice lives in Paris")
        facts.append({"text": "Alice lives in Berlin", "supersedes": [old] if old else []})
    elif "live in Paris" in said:
        facts.append({"text": "Alice lives in Paris"})
    return json.dumps({"facts": facts})


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with fact_mesh(fresh_database(), tmp_path, extractor) as harness:
        yield harness


async def fact_rows(harness: Harness) -> dict[str, dict[str, Any]]:
    engine = create_engine(harness.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    memories.c.id, memories.c.text, memories.c.superseded_by, memories.c.tags
                ).where(memories.c.tags.contains(["fact"]))
            )
            return {
                row.text: {
                    "id": str(row.id),
                    "superseded_by": row.superseded_by and str(row.superseded_by),
                }
                for row in rows
            }
    finally:
        await engine.dispose()


async def until_fact(harness: Harness, text: str) -> dict[str, dict[str, Any]]:
    for _ in range(300):
        rows = await fact_rows(harness)
        if text in rows:
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"no fact {text!r} was stored")


async def test_a_new_fact_supersedes_the_old_one_and_only_it_reaches_the_prompt(
    harness: Harness,
) -> None:
    await set_key(harness)
    place = request("").location
    await converse(harness, request("I live in Paris now, near the canal."))
    rows = await until_fact(harness, "Alice lives in Paris")
    assert rows["Alice lives in Paris"]["superseded_by"] is None
    extraction = [
        r for r in harness.provider.chat_requests() if "durable facts" in str(r.body["messages"][0])
    ]
    assert extraction, "gateway had inference call the model to extract facts"
    assert extraction[0].api_key == USER_KEY

    await converse(harness, request("Big news: I moved to Berlin last week."))
    rows = await until_fact(harness, "Alice lives in Berlin")
    berlin = rows["Alice lives in Berlin"]
    assert berlin["superseded_by"] is None
    assert rows["Alice lives in Paris"]["superseded_by"] == berlin["id"]

    # Memories of turns still in the prompt's history are left out: start a new history.
    await harness.bot.ClearHistory(
        gw.ClearHistoryRequest(actor=actor(), location=place, personality="Echo")
    )
    await converse(harness, request("Do you know where Alice lives?"))
    prompt = json.dumps(harness.provider.chat_requests()[-1].body["messages"])
    assert "Alice lives in Berlin" in prompt
    assert "Alice lives in Paris" not in prompt


async def test_the_extractions_paid_call_is_in_usage(harness: Harness) -> None:
    await set_key(harness)
    events, _ = await converse(harness, request("I live in Paris now, near the canal."))
    job_id = events[0].accepted.job_id
    await until_fact(harness, "Alice lives in Paris")
    (row,) = await usage_rows(harness, "fact_extraction")
    assert (row.job_id, row.provider, row.model) == (job_id, "openrouter", "fake/echo")
    assert row.input_tokens > 0
    assert row.output_tokens > 0
    assert not row.failed
    reply = await harness.bot.GetUsage(
        gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY)
    )
    totals = {u.request_type: u for u in reply.totals}
    assert set(totals) == {"chat", "fact_extraction"}
    extraction = totals["fact_extraction"]
    assert (extraction.requests, extraction.input_tokens) == (1, row.input_tokens)
    text = render.usage(reply, "day")  # the bot's /usage
    assert (
        f"`openrouter/fake/echo` (fact extraction): 1 request, {row.input_tokens:,} in / "
        f"{row.output_tokens:,} out tokens"
    ) in text
