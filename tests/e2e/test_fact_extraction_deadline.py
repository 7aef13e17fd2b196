"""A fact extraction the gateway's deadline cut, through the whole mesh: the provider bills the
prompt it read (and what it generated), but the call ends DEADLINE_EXCEEDED, with no status
details for inference's estimate. Inference announced the prompt (its tokens, with the
model's tokenizer) in the call's initial metadata once the provider accepted the request; the
gateway reads it from the cut call and writes a `fact_extraction` usage_log row, failed and
estimated, of that prompt, as it does for a reply cancelled mid-answer. So when the provider
is still streaming at the deadline, and when it answered but inference had not replied yet.
A call cut before its request went out (the key still being read) was billed nothing and is
in no row."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.fact_mesh import FACTS_GATEWAY, usage_rows
from tzurot.bot.commands import render
from tzurot.gateway.facts import FactExtraction
from tzurot.inference.broken_off import prompt_tokens
from tzurot.inference.helper_models import HelperModels
from tzurot.inference.retries import helper_completion
from tzurot.inference.tokens import TokenCounter
from tzurot.testing.e2e import USER_KEY, Harness, actor, converse, echo_mesh, request, set_key
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

DEADLINE = 8.0
"""The gateway's deadline for every inference call (generate_deadline_seconds): the reply's
three words (0.6 s at CHUNK_DELAY) end well within it on a loaded host too."""
CHUNK_DELAY = 0.2
ANSWER = "Noted, Alice."
FACTS = json.dumps(
    {"facts": [{"text": f"Alice keeps a cat named Biscuit number {n}."} for n in range(24)]}
)
"""Some two hundred chunks: forty seconds at CHUNK_DELAY, so the deadline cuts it mid-stream
(the fake stops streaming when the call goes away)."""


def model(body: dict[str, Any]) -> str:
    return FACTS if is_extraction(body) else ANSWER


def is_extraction(body: dict[str, Any]) -> bool:
    return "durable facts" in str(body["messages"][0]["content"])


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with (
        FakeProvider(valid_keys={USER_KEY}, reply=model, chunk_delay=CHUNK_DELAY) as provider,
        echo_mesh(
            fresh_database(),
            tmp_path,
            provider=provider,
            gateway={**FACTS_GATEWAY, "generate_deadline_seconds": DEADLINE},
        ) as h,
    ):
        await set_key(h)
        yield h


def extraction_requests(h: Harness) -> list[dict[str, Any]]:
    return [r.body for r in h.provider.chat_requests() if is_extraction(r.body)]


async def the_extraction_row(h: Harness) -> Any:
    for _ in range(150):
        rows = await usage_rows(h, "fact_extraction")
        if rows:
            (row,) = rows
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("no fact_extraction usage row was written")


async def assert_the_prompt_is_billed(h: Harness, job_id: str) -> None:
    row = await the_extraction_row(h)
    (sent,) = extraction_requests(h)
    assert (row.job_id, row.provider, row.model) == (job_id, "openrouter", "fake/echo")
    assert row.failed
    assert row.estimated
    assert row.input_tokens == prompt_tokens(sent["messages"], TokenCounter("fake/echo"))
    assert row.input_tokens > 100  # the instructions alone
    assert row.output_tokens == 0  # what streamed is unknown here: a floor
    reply = await h.bot.GetUsage(gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY))
    (extraction,) = [u for u in reply.totals if u.request_type == "fact_extraction"]
    assert (extraction.requests, extraction.failed_requests, extraction.estimated_requests) == (
        1,
        1,
        1,
    )
    assert "(fact extraction): 1 request" in render.usage(reply, "day")


async def test_an_extraction_still_streaming_at_the_deadline_is_in_usage(
    harness: Harness,
) -> None:
    events, job_id = await converse(harness, request("I have a cat called Biscuit."))
    assert events[-1].finished.content == ANSWER
    await assert_the_prompt_is_billed(harness, job_id)


async def test_an_extraction_answered_but_not_replied_by_the_deadline_is_in_usage(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.provider.chunk_delay = 0.0
    answered = asyncio.Event()

    async def answered_then_slow(*args: Any, **kwargs: Any) -> Any:
        completion = await helper_completion(*args, **kwargs)
        answered.set()
        await asyncio.sleep(DEADLINE * 3)  # inference busy: its reply comes too late
        return completion

    monkeypatch.setattr("tzurot.inference.helper_models.helper_completion", answered_then_slow)
    _, job_id = await converse(harness, request("I have a cat called Biscuit."))
    await asyncio.wait_for(answered.wait(), DEADLINE * 2)
    await assert_the_prompt_is_billed(harness, job_id)


async def test_an_extraction_cut_before_its_request_went_out_is_in_no_row(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading = asyncio.Event()
    target: Callable[..., Awaitable[Any]] = HelperModels._target

    async def slow_key(self: HelperModels, *args: Any, **kwargs: Any) -> Any:
        reading.set()
        await asyncio.sleep(DEADLINE * 3)  # the key still being read at the deadline
        return await target(self, *args, **kwargs)

    handled = asyncio.Event()
    keep_cut_off: Callable[..., Awaitable[None]] = FactExtraction._keep_cut_off

    async def handled_then(self: FactExtraction, *args: Any, **kwargs: Any) -> None:
        await keep_cut_off(self, *args, **kwargs)
        handled.set()  # the gateway has handled the cut call (written its row, if any)

    monkeypatch.setattr(HelperModels, "_target", slow_key)
    monkeypatch.setattr(FactExtraction, "_keep_cut_off", handled_then)
    await converse(harness, request("I have a cat called Biscuit."))
    await asyncio.wait_for(reading.wait(), DEADLINE * 2)
    await asyncio.wait_for(handled.wait(), DEADLINE * 3)
    assert not extraction_requests(harness)
    assert await usage_rows(harness, "fact_extraction") == []
