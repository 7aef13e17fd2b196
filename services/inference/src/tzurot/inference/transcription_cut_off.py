"""What a transcription that failed may have been billed: Tzurot's estimate.

A transcription is answered in one body, once the provider has the whole file, and it bills
the audio it processed (whisper-1 by the second; gpt-4o-transcribe by tokens, mostly the
audio's) also when that answer never reaches us. So a call whose whole upload went out and
then failed is estimated: no answer in time once sent (NoAnswerInTime), the connection dropped
after the upload, a 500 or a 504, an answer the SDK could not read. Its estimate is reported
paid and not delivered (UsageSpent, failed, `estimated`): the audio's duration in seconds.
For a token-billed model too: no provider documents how many tokens a second of audio is on
`/audio/transcriptions`, so that row says seconds, never invented tokens (its /usage line then
holds the successes' tokens and the failures' seconds of audio).

Never estimated (billed nothing): a refusal (a 4xx, 408 and 409 included), an overload or
a missing upstream (502, 503, 529, and any 5xx with a Retry-After: said before the work), a
request never sent (NotSent), and an upload that failed before the provider had the whole
file (NotReceived: a write that stalled or broke).

The duration is read without decoding (`tzurot.audio.header_duration`): the container's
header, else its packets added up, with the demuxer of the file's validated content type
(DEMUXERS; FFmpeg never guesses one, so none that opens other files). It runs on one thread
of its own (`_ESTIMATES`, so a burst of failures in an outage never holds the default pool
that reply work shares) within ESTIMATE_TIME_LIMIT, the longest it delays the reply's error;
past it, or for audio it cannot read, the estimate is the file's size at a typical bitrate
(`size_estimate`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import structlog

from tzurot.audio import AudioError, header_duration
from tzurot.inference.domain import TRANSCRIPTION, PaidCall, TokenUsage
from tzurot.inference.provider_errors import NotReceived
from tzurot.inference.retries import UNREACHED, NoAnswerInTime, NotSent
from tzurot.runtime.errors import TzurotError, Unavailable

MAX_ESTIMATED_SECONDS = 3600.0
"""A longer file (or header that says so) is counted as this long, a floor."""
ESTIMATE_TIME_LIMIT = 1.5
"""Seconds the estimate may take, waiting for its thread included (reading an hour of Opus
packets takes ~0.5 s); past it the reply's error goes on with the size estimate."""
DEMUXERS = {
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "mp4",
    "audio/x-m4a": "mp4",
    "audio/m4a": "mp4",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/webm": "webm",
    "audio/flac": "flac",
}
"""The FFmpeg demuxer each accepted audio type is read with (attachments.AUDIO_TYPES)."""
UNCOMPRESSED_BITRATE = 768_000
"""Bits a second taken for a WAV or FLAC file of unknown length: 16-bit 48 kHz mono PCM. A
floor for any such voice recording (FLAC halves it; stereo or 44.1 kHz differ little)."""
COMPRESSED_BITRATE = 128_000
"""Bits a second taken for any other file of unknown length: the top of what speech is
encoded at (Discord's voice messages are ~32 kbps Opus), so again a floor."""
_LOSSLESS = frozenset({"wav", "flac"})
_BILLED_STATUSES = frozenset({"500", "504"})
"""The 5xx that may follow the work: an internal error, or a gateway timing out on a provider
that had the file. 502, 503, 529 and the others are an overload or no upstream."""

_ESTIMATES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transcription-estimate")
"""The estimates' one thread, made on demand: a queued estimate whose caller stopped waiting
is dropped before it starts; a running one stops itself at ESTIMATE_TIME_LIMIT."""

log = structlog.get_logger(__name__)


def may_have_billed(err: TzurotError) -> bool:
    """Whether the transcription that failed with `err` may have been processed, and billed:
    no answer in time once sent, a connection dropped after the upload, a 500 or 504 without
    a Retry-After, an unreadable answer; never a refusal, an overload, a request never sent
    nor an upload the provider did not receive whole."""
    if (
        isinstance(err, NotSent | NotReceived)
        or not isinstance(err, Unavailable)
        or err.reason != UNREACHED
    ):
        return False
    if isinstance(err, NoAnswerInTime):
        return True
    status = err.metadata.get("status")
    if status is None:
        return True  # dropped after the upload, an unreadable answer
    return status in _BILLED_STATUSES and "retry_after" not in err.metadata


@asynccontextmanager
async def estimating_unheard(
    provider: str, model: str, audio: bytes, content_type: str, unheard: list[PaidCall] | None
) -> AsyncIterator[None]:
    """Around a transcription of `audio` (of the validated `content_type`): when it fails
    after the provider may have processed it, its estimate is added to `unheard` before the
    error goes on (within ESTIMATE_TIME_LIMIT)."""
    try:
        yield
    except TzurotError as err:
        if unheard is not None and may_have_billed(err):
            unheard.append(await transcription_cut_off(provider, model, audio, content_type))
        raise


async def transcription_cut_off(
    provider: str, model: str, audio: bytes, content_type: str
) -> PaidCall:
    """The failed transcription of `audio`, estimated: its duration in seconds, as whisper
    bills it (request_type TRANSCRIPTION, `estimated`, no tokens)."""
    seconds = await estimated_seconds(audio, content_type)
    return PaidCall(
        TRANSCRIPTION, provider, model, TokenUsage(0, 0), audio_seconds=seconds, estimated=True
    )


async def estimated_seconds(audio: bytes, content_type: str) -> float:
    """The audio's seconds (at most MAX_ESTIMATED_SECONDS), read on `_ESTIMATES` within
    ESTIMATE_TIME_LIMIT; else `size_estimate`."""
    demuxer = DEMUXERS.get(content_type)
    if demuxer is None:
        return size_estimate(len(audio), "")
    read = functools.partial(_duration, audio, demuxer)
    context = contextvars.copy_context()  # the log context, as asyncio.to_thread
    running = asyncio.get_running_loop().run_in_executor(
        _ESTIMATES, functools.partial(context.run, read)
    )
    try:
        seconds = await asyncio.wait_for(running, ESTIMATE_TIME_LIMIT)
    except TimeoutError:
        seconds = None
    if seconds is None:
        log.warning("transcription.cut_off_length_by_size", size=len(audio), demuxer=demuxer)
        return size_estimate(len(audio), demuxer)
    return seconds


def size_estimate(size: int, demuxer: str) -> float:
    """Seconds of a file of `size` bytes of unknown length: at UNCOMPRESSED_BITRATE for WAV
    and FLAC, else COMPRESSED_BITRATE (at most MAX_ESTIMATED_SECONDS)."""
    bitrate = UNCOMPRESSED_BITRATE if demuxer in _LOSSLESS else COMPRESSED_BITRATE
    return round(min(size * 8 / bitrate, MAX_ESTIMATED_SECONDS), 3)


def _duration(audio: bytes, demuxer: str) -> float | None:
    """The audio's seconds by its header or packets; None when they cannot say."""
    try:
        info = header_duration(
            audio, demuxer, max_seconds=MAX_ESTIMATED_SECONDS, time_limit=ESTIMATE_TIME_LIMIT
        )
    except AudioError:
        return None
    return round(info.duration_secs, 3)
