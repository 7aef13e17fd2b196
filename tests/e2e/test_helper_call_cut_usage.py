"""A helper call for an attachment cut while the provider works on it is in `/usage`, across
the mesh. The user deleted the message (the bot cancels its Generate), so inference can send
nothing more; what it said as the call's request went out whole (HelperCallPending) is what
the gateway writes, failed, under the call's own kind:

- an image's description, held mid-answer: its prompt, estimated (nothing of the answer
  was streamed);
- a voice note's transcript clean-up, held mid-answer: its prompt, estimated; and the
  transcription, which had answered, by the provider's own count (whisper-1's seconds), not
  the estimate of the audio's duration said while it worked;
- a description the provider refused with a 429 and inference waits to ask again: nothing
  (that attempt was taken back; the provider billed nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.e2e.test_transcription_cut_off_usage import SECONDS, VOICE, voice_note
from tests.e2e.test_transcription_cut_short_usage import gateway_keeps, kept_until, taken_back
from tzurot.db.engine import create_engine
from tzurot.gateway import domain as g
from tzurot.gateway import tables as t
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
from tzurot.testing.waits import until
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
HELPER = ("openrouter", "openai/gpt-4o-mini")
"""The describer's and the cleaner's provider and model (inference's defaults)."""
CHAT = "/v1/chat/completions"


@pytest.fixture
async def cdn() -> AsyncIterator[str]:
    async with local_cdn({".ogg": (VOICE, "audio/ogg"), "": (PNG, "image/png")}) as url:
        yield url


@pytest.fixture
async def h(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with (
        FakeProvider(valid_keys={USER_KEY}, any_model=True) as provider,
        echo_mesh(
            fresh_database(), tmp_path, provider=provider, inference=HELPER_MODELS_ON_USER_KEY
        ) as harness,
    ):
        await set_key(harness)
        provider.hold = asyncio.Event()  # chat streams wait after their first chunk
        try:
            yield harness
        finally:
            provider.hold.set()


@pytest.fixture
def kept(monkeypatch: pytest.MonkeyPatch) -> asyncio.Queue[g.HelperCallPending]:
    """Each HelperCallPending the gateway keeps, as it keeps it."""
    return gateway_keeps(monkeypatch)


def image_message(cdn: str) -> gw.GenerateRequest:
    req = request("look")
    req.attachments.append(
        common.Attachment(
            url=f"{cdn}/cat.png?ex=1", content_type="image/png", filename="cat.png", size_bytes=208
        )
    )
    return req


async def usage_rows(h: Harness) -> dict[str, list[Any]]:
    """The usage rows, by kind."""
    engine = create_engine(h.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = list(await conn.execute(sa.select(t.usage_log)))
    finally:
        await engine.dispose()
    kinds: dict[str, list[Any]] = {}
    for row in rows:
        kinds.setdefault(row.request_type, []).append(row)
    return kinds


async def rows_soon(h: Harness, *kinds: str) -> dict[str, list[Any]]:
    """The usage rows once there are some of every kind in `kinds` (the gateway writes a
    cancel's a moment after the bot went away), or what there is after 30 s."""
    rows: dict[str, list[Any]] = {}
    for _ in range(600):
        rows = await usage_rows(h)
        if all(rows.get(kind) for kind in kinds):
            break
        await asyncio.sleep(0.05)
    return rows


async def deleted_while_the_provider_answers(
    h: Harness,
    req: gw.GenerateRequest,
    kept: asyncio.Queue[g.HelperCallPending],
    request_type: str,
) -> None:
    """The message is sent, its helper call (of `request_type`) reaches the provider (held
    mid-answer), and once the gateway has what inference said the call may bill as its
    request went out, the message is deleted: the bot cancels its Generate."""
    call = h.bot.Generate(req)
    first = await call.read()
    assert isinstance(first, gw.GenerateResponse)
    assert first.HasField("accepted")
    await kept_until(
        kept,
        lambda pending: any(c.request_type == request_type for c in pending.calls),
        f"with a {request_type}",
    )
    await until(h.provider.chat_requests, "the provider has the request")
    assert len(h.provider.chat_requests()) == 1
    call.cancel()


def assert_prompt_estimated(rows: list[Any]) -> None:
    (row,) = rows
    assert (row.provider, row.model) == HELPER
    assert (row.failed, row.estimated) == (True, True)
    assert row.input_tokens > 0  # its prompt
    assert row.output_tokens == 0  # nothing of the answer came


async def test_a_description_cut_by_the_users_deletion_is_estimated(
    h: Harness, cdn: str, kept: asyncio.Queue[g.HelperCallPending]
) -> None:
    await deleted_while_the_provider_answers(h, image_message(cdn), kept, "image_description")
    rows = await rows_soon(h, "image_description")
    assert_prompt_estimated(rows.get("image_description", []))
    assert set(rows) == {"image_description"}  # no answer was asked
    assert len(h.provider.chat_requests()) == 1
    reply = await h.bot.GetUsage(gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY))
    (described,) = [u for u in reply.totals if u.request_type == "image_description"]
    assert (described.requests, described.failed_requests, described.estimated_requests) == (
        1,
        1,
        1,
    )


async def test_a_cleanup_cut_by_the_users_deletion_counts_the_transcription_as_billed(
    h: Harness, cdn: str, kept: asyncio.Queue[g.HelperCallPending]
) -> None:
    await deleted_while_the_provider_answers(h, voice_note(cdn), kept, "transcript_cleanup")
    rows = await rows_soon(h, "transcription", "transcript_cleanup")
    assert_prompt_estimated(rows.get("transcript_cleanup", []))
    (heard,) = rows.get("transcription", [])
    assert (heard.provider, heard.model) == ("openrouter", "whisper-1")
    assert (heard.failed, heard.estimated) == (True, False)  # the provider's own count
    assert heard.audio_seconds == h.provider.transcript_seconds != pytest.approx(SECONDS)
    assert set(rows) == {"transcription", "transcript_cleanup"}


async def test_a_cancel_while_a_refused_description_waits_records_nothing(
    h: Harness, cdn: str, kept: asyncio.Queue[g.HelperCallPending]
) -> None:
    """The provider had the whole request and answered 429 with a Retry-After that fits:
    inference waits to ask again, having taken back what it said the call may bill."""
    h.provider.fail_next(429, retry_after=15, path=CHAT)
    call = h.bot.Generate(image_message(cdn))
    await call.read()
    await kept_until(kept, taken_back, "taking the estimate back")
    assert len(h.provider.chat_requests()) == 1
    call.cancel()
    await asyncio.sleep(1.0)  # the cancel's writes, had there been any
    assert await usage_rows(h) == {}
    assert len(h.provider.chat_requests()) == 1  # never asked again
