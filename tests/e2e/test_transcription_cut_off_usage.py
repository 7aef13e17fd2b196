"""A voice note whose transcription failed after the provider may have heard it is in
`/usage`, across the mesh: the provider bills the audio it processed, and its answer (with its
usage) never came, so inference estimates the call by the audio's duration and sends it
(UsageSpent, failed) before the reply's error; the gateway writes a `transcription`
usage_log row, failed and estimated, with those seconds. A transcription the provider
refused before processing (a 4xx), said it was overloaded or had no upstream for (502, 503)
or never received is in no row. Only the `slow` case runs with a short provider timeout: the
others keep the default, so a loaded host never turns their refusal into a timeout."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from tzurot.audio import encode_tone
from tzurot.bot.commands import render
from tzurot.db.engine import create_engine
from tzurot.gateway import tables as t
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
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

SECONDS = 2.5
VOICE = encode_tone(SECONDS, fmt="ogg")
"""A real recording (Opus in OGG), whose duration the estimate reads."""
PROVIDER_TIMEOUT = 3.0
"""Inference's per-step limit in the `slow` case: a transcription working longer is unanswered
in time (the CDN download, well within it, too)."""
TRANSCRIPTIONS = "/v1/audio/transcriptions"


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    async with local_cdn({".ogg": (VOICE, "audio/ogg")}) as url:
        yield url


@pytest.fixture
async def harness(
    fresh_database: DatabaseFactory, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Harness]:
    """The mesh; with PROVIDER_TIMEOUT only for the `slow` case."""
    short = request.node.name.endswith("[slow]")
    timeout = {"provider_timeout_seconds": PROVIDER_TIMEOUT} if short else {}
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as provider,
        echo_mesh(
            fresh_database(),
            tmp_path,
            provider=provider,
            inference={**HELPER_MODELS_ON_USER_KEY, **timeout, "provider_max_retries": 0},
        ) as h,
    ):
        await set_key(h)
        yield h


def voice_note(cdn: str) -> gw.GenerateRequest:
    req = request("")
    req.attachments.append(
        common.Attachment(
            url=f"{cdn}/voice.ogg?ex=1",
            content_type="audio/ogg",
            filename="voice.ogg",
            size_bytes=len(VOICE),
        )
    )
    return req


async def failed_reply(h: Harness, cdn: str) -> str:
    """The reply's error reason (it fails: the voice note could not be read)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [e async for e in h.bot.Generate(voice_note(cdn))]
    return from_rpc_error(caught.value).reason


async def transcription_rows(h: Harness) -> list[Any]:
    engine = create_engine(h.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(t.usage_log).where(t.usage_log.c.request_type == "transcription")
            )
            return list(rows)
    finally:
        await engine.dispose()


def five_hundred(provider: FakeProvider) -> None:
    provider.fail_next(500, path=TRANSCRIPTIONS)


def slow(provider: FakeProvider) -> None:
    provider.transcription_delay = PROVIDER_TIMEOUT * 3


def dropped(provider: FakeProvider) -> None:
    provider.drop_transcriptions = 1


@pytest.mark.parametrize("fault", [five_hundred, slow, dropped], ids=lambda f: f.__name__)
async def test_a_transcription_failed_after_the_upload_is_estimated_by_its_duration(
    harness: Harness, cdn: str, fault: Callable[[FakeProvider], None]
) -> None:
    fault(harness.provider)
    assert await failed_reply(harness, cdn) == "PROVIDER_UNAVAILABLE"
    assert len(harness.provider.transcription_requests()) == 1  # never sent again
    assert not harness.provider.chat_requests()  # no clean-up, no answer
    (row,) = await transcription_rows(harness)
    assert (row.provider, row.model) == ("openrouter", "whisper-1")
    assert row.failed
    assert row.estimated
    assert row.audio_seconds == pytest.approx(SECONDS, abs=0.05)
    assert (row.input_tokens, row.output_tokens) == (0, 0)
    reply = await harness.bot.GetUsage(
        gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY)
    )
    (heard,) = [u for u in reply.totals if u.request_type == "transcription"]
    assert (heard.requests, heard.failed_requests, heard.estimated_requests) == (1, 1, 1)
    assert heard.audio_seconds == pytest.approx(SECONDS, abs=0.05)
    assert "(transcription): 1 request" in render.usage(reply, "day")


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "PROVIDER_REJECTED_REQUEST"),  # a format it cannot read
        (408, "PROVIDER_UNAVAILABLE"),  # the upload was not received in time
        (413, "PROVIDER_REJECTED_REQUEST"),  # too large
        (429, "PROVIDER_RATE_LIMITED"),
        (502, "PROVIDER_UNAVAILABLE"),  # no upstream: before any work
        (503, "PROVIDER_UNAVAILABLE"),  # overloaded: before any work
    ],
)
async def test_a_transcription_refused_before_processing_is_in_no_row(
    harness: Harness, cdn: str, status: int, reason: str
) -> None:
    harness.provider.fail_next(status, path=TRANSCRIPTIONS)
    assert await failed_reply(harness, cdn) == reason
    assert len(harness.provider.transcription_requests()) == 1
    assert await transcription_rows(harness) == []


async def test_a_key_refused_for_a_transcription_is_in_no_row(harness: Harness, cdn: str) -> None:
    harness.provider.valid_keys.clear()  # 401: the user's key refused
    assert await failed_reply(harness, cdn) == "INVALID_API_KEY"
    assert await transcription_rows(harness) == []


async def test_a_transcription_never_sent_is_in_no_row(harness: Harness, cdn: str) -> None:
    """Nothing listens where the provider was: the connection failed before the request."""
    await harness.provider.stop()
    assert await failed_reply(harness, cdn) == "PROVIDER_UNAVAILABLE"
    assert await transcription_rows(harness) == []
