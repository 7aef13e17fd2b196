"""What a transcription that failed may have been billed: Tzurot's estimate.

A transcription is answered in one body, once the provider has heard the whole file, and it
bills the audio it processed (whisper-1 by the second; gpt-4o-transcribe by tokens, mostly
the audio's) also when that answer never reaches us: the request went out and no answer came
in time (NoAnswerInTime), the connection dropped while the answer was awaited, a 5xx after
the upload, an answer the SDK could not read. Such a call is estimated by the audio's
duration (`tzurot.audio.probe` decodes the file, counting its samples, in a worker thread)
and reported paid and not delivered (UsageSpent, failed) with `estimated` set: what it cost
is that duration at the model's per-minute rate. A call the provider refused before
processing it (a 4xx: the key, the file's size or format, a rate limit, no credit; a 408 or
409) or never received (NotSent) was billed nothing and is reported as nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog

from tzurot.audio import AudioError, AudioTooLong, probe
from tzurot.inference.domain import TRANSCRIPTION, PaidCall, TokenUsage
from tzurot.inference.retries import UNREACHED, NoAnswerInTime, NotSent
from tzurot.runtime.errors import TzurotError, Unavailable

MAX_ESTIMATED_SECONDS = 3600.0
"""Decoding stops here (about 8 s of CPU for an hour of Opus): a longer file is counted as
this long, a floor."""

log = structlog.get_logger(__name__)


def may_have_billed(err: TzurotError) -> bool:
    """Whether the transcription that failed with `err` may have been processed, and billed:
    a timeout once sent, a connection dropped after sending, a 5xx, an unreadable answer;
    never a refusal (any 4xx, 408 and 409 included) nor a request never sent."""
    if isinstance(err, NotSent) or not isinstance(err, Unavailable) or err.reason != UNREACHED:
        return False
    if isinstance(err, NoAnswerInTime):
        return True
    status = err.metadata.get("status", "")
    return not status.isdigit() or int(status) >= 500


@asynccontextmanager
async def estimating_unheard(
    provider: str, model: str, audio: bytes, unheard: list[PaidCall] | None
) -> AsyncIterator[None]:
    """Around a transcription of `audio`: when it fails after the provider may have
    processed it, its estimate is added to `unheard` before the error goes on."""
    try:
        yield
    except TzurotError as err:
        if unheard is not None and may_have_billed(err):
            unheard.append(await transcription_cut_off(provider, model, audio))
        raise


async def transcription_cut_off(provider: str, model: str, audio: bytes) -> PaidCall:
    """The failed transcription of `audio`, estimated: its duration, as the provider bills
    it (request_type TRANSCRIPTION, `estimated`)."""
    seconds = await asyncio.to_thread(_duration, audio)
    return PaidCall(
        TRANSCRIPTION, provider, model, TokenUsage(0, 0), audio_seconds=seconds, estimated=True
    )


def _duration(audio: bytes) -> float:
    """The audio's seconds (at most MAX_ESTIMATED_SECONDS); 0 when it cannot be decoded,
    which leaves the call counted, its length unknown."""
    try:
        return round(probe(audio, max_seconds=MAX_ESTIMATED_SECONDS).duration_secs, 3)
    except AudioTooLong:
        return MAX_ESTIMATED_SECONDS
    except AudioError:
        log.warning("transcription.cut_off_length_unknown", size=len(audio))
        return 0.0
