"""A helper model's call cut off once its request went out is in `/usage`, across the mesh:
the provider may have billed the prompt and what it streamed, and its usage never came, so
inference sends its estimate (UsageSpent, failed) and the gateway writes it as a failed,
estimated usage_log row under the helper's request type. An image description the provider
broke off fails the reply; a transcript's clean-up broken off leaves the raw transcript,
and the reply is answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tzurot.bot.commands import render
from tzurot.runtime.errors import from_rpc_error
from tzurot.testing.cdn import local_cdn
from tzurot.testing.e2e import (
    HELPER_MODELS_ON_USER_KEY,
    USER_KEY,
    Harness,
    actor,
    echo_mesh,
    request,
    set_key,
)
from tzurot.testing.fake_provider import FakeProvider, ScriptedReply
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
OGG = b"OggS" + bytes(300)
LONG = "Hello there, Echo. Look at my cat, asleep on the sofa again."
SHORT = "Nice cat."
"""Two chunks: streamed whole while streams are dropped after the third."""


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    async with local_cdn({".ogg": (OGG, "audio/ogg"), "": (PNG, "image/png")}) as url:
        yield url


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as provider,
        echo_mesh(
            fresh_database(), tmp_path, provider=provider, inference=HELPER_MODELS_ON_USER_KEY
        ) as h,
    ):
        await set_key(h)
        yield h


def with_attachment(cdn: str, name: str, content_type: str, size: int) -> gw.GenerateRequest:
    req = request("")
    req.attachments.append(
        common.Attachment(
            url=f"{cdn}/{name}?ex=1", content_type=content_type, filename=name, size_bytes=size
        )
    )
    return req


async def usage(h: Harness) -> gw.GetUsageResponse:
    return await h.bot.GetUsage(gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY))


def of_type(reply: gw.GetUsageResponse, request_type: str) -> gw.UsageTotal:
    (total,) = [t for t in reply.totals if t.request_type == request_type]
    return total


async def test_a_description_broken_mid_stream_is_in_usage_failed_and_estimated(
    harness: Harness, cdn: str
) -> None:
    harness.provider.script = [ScriptedReply(LONG)]
    harness.provider.drop_after_chunks = 3
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [
            e async for e in harness.bot.Generate(with_attachment(cdn, "cat.png", "image/png", 208))
        ]
    assert from_rpc_error(caught.value).reason == "PROVIDER_UNAVAILABLE"
    assert len(harness.provider.chat_requests()) == 1  # the description; no answer asked
    reply = await usage(harness)
    described = of_type(reply, "image_description")
    assert (described.provider, described.model) == ("openrouter", "openai/gpt-4o-mini")
    assert (described.requests, described.failed_requests, described.estimated_requests) == (
        1,
        1,
        1,
    )
    assert described.input_tokens > 0
    assert described.output_tokens > 0
    assert "(image description): 1 request" in render.usage(reply, "day")


async def test_a_cleanup_broken_mid_stream_is_in_usage_and_the_reply_answered(
    harness: Harness, cdn: str
) -> None:
    provider = harness.provider
    provider.transcript = "hello echo look at my cat asleep on the sofa again"
    provider.script = [ScriptedReply(LONG), ScriptedReply(SHORT)]
    provider.drop_after_chunks = 3  # the clean-up's stream breaks; the short answer streams
    events = [
        e async for e in harness.bot.Generate(with_attachment(cdn, "voice.ogg", "audio/ogg", 304))
    ]
    assert events[-1].finished.content == SHORT
    prompt = str(provider.chat_requests()[-1].body["messages"][-1]["content"])
    assert f"[Voice message: {provider.transcript}]" in prompt  # raw: not cleaned
    reply = await usage(harness)
    cleanup = of_type(reply, "transcript_cleanup")
    assert (cleanup.requests, cleanup.failed_requests, cleanup.estimated_requests) == (1, 1, 1)
    assert cleanup.output_tokens > 0
    transcription = of_type(reply, "transcription")
    assert (transcription.requests, transcription.failed_requests) == (1, 0)
