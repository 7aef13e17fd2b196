"""Gateway._replies: an attachment a helper model read is recorded even when it arrives once
the job is lost (another run took it, it was cancelled): what was paid is recorded whichever
run paid it (record_attachment_read is unfenced by the attempt); the lost job then ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tzurot.gateway import domain as g
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.gateway.service import Gateway
from tzurot.runtime.errors import FailedPrecondition

HEARD = g.Usage("openai", "whisper-1", 0, 0, request_type="transcription", audio_seconds=3.0)
READ = g.AttachmentRead(0, g.Attachment(url="u", content_type="audio/ogg"), (HEARD,))


class Inference:
    async def generate_reply(self, request: Any) -> AsyncIterator[g.ReplyEvent]:
        yield READ
        yield g.ReplyChunk("never relayed")


class Lost:
    """The parts of Gateway `_replies` uses: inference's stream, and the records."""

    def __init__(self) -> None:
        self._inference = Inference()
        self.kept: list[g.AttachmentRead] = []

    async def _keep_read(self, request: Any, read: g.AttachmentRead, taken_after: Any) -> None:
        self.kept.append(read)

    async def _lost(self, job: Any) -> Exception:
        return FailedPrecondition("taken over", reason="JOB_TAKEN_OVER")


async def relayed_of(replies: AsyncIterator[Any]) -> None:
    async for _ in replies:
        raise AssertionError("a lost job relays nothing")


async def test_a_reading_that_comes_once_the_job_is_lost_is_still_recorded() -> None:
    gateway, lost = Lost(), asyncio.Event()
    lost.set()
    replies = Gateway._replies(
        gateway,  # type: ignore[arg-type]  # only the parts it uses
        object(),  # type: ignore[arg-type]
        object(),  # type: ignore[arg-type]
        lost,
        "reply",
        RelayedAnswer(),
        marked=set(),
        taken_after=datetime.now(UTC),
    )
    with pytest.raises(FailedPrecondition):
        await relayed_of(replies)
    assert gateway.kept == [READ]
