"""What a transcription that failed may have been billed: Tzurot's estimate.

A transcription is answered in one body, once the provider has the whole file, and it bills
the audio it processed (whisper-1 by the second; gpt-4o-transcribe by tokens, mostly the
audio's) also when that answer never reaches us. So a call whose whole upload went out and
then failed is estimated: no answer in time once sent (NoAnswerInTime), the connection dropped
after the upload, a 500 or a 504 (or Cloudflare's 520 or 524: an origin that had the request
answered nothing valid, or nothing in time), an answer the SDK could not read. Its estimate
is reported paid and not delivered (UsageSpent, failed, `estimated`): the audio's duration in
seconds. For a token-billed model too: no provider documents how many tokens a second of
audio is on `/audio/transcriptions`, so that row says seconds, never invented tokens (its
/usage line then holds the successes' tokens and the failures' seconds of audio). The
estimate is read while the audio uploads, whatever comes of the call: said once the
provider has the whole upload, for a reply cut before the outcome (HelperCallPending,
transcription.py; by the file's size, `size_cut_off`, until the duration is read), then
reused should the call fail.

Never estimated (billed nothing): a refusal (a 4xx, 408 and 409 included), an overload or
a missing upstream (502, 503, 521-523, 529, and any 5xx with a Retry-After: said before the
work), a request never sent (NotSent), and an upload the client could not hand to its socket
whole (NotReceived: the write stalled or the connection was reset while the client was still
writing; a file small enough for the connection's buffers is handed over whole at once, so
its failure counts even if the provider read only part of it: uploads.py).

The duration is read without decoding (`tzurot.audio.header_duration`): the container's
header, else its packets added up, with the demuxer of the file's validated content type
(DEMUXERS; FFmpeg never guesses one, so none that opens other files). It runs on one thread
of its own (`_ESTIMATES`, so a burst of failures in an outage never holds the default pool
that reply work shares) within ESTIMATE_TIME_LIMIT, the longest it delays the reply's error;
past it, for audio it cannot read (or whose header declares more than the file holds), or
when MAX_PENDING estimates already wait for that thread, the estimate is the file's size at
a typical bitrate (`size_estimate`). The estimate never replaces the reply's error: any
failure of the reader is the size estimate too.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import structlog

from tzurot.audio import AudioError, header_duration
from tzurot.inference.domain import TRANSCRIPTION, PaidCall, TokenUsage
from tzurot.inference.retries import UNREACHED, NoAnswerInTime, NotReceived, NotSent
from tzurot.runtime.errors import TzurotError, Unavailable

MAX_ESTIMATED_SECONDS = 3600.0
"""A longer file (or header that says so) is counted as this long."""
ESTIMATE_TIME_LIMIT = 1.5
"""Seconds the estimate may take, waiting for its thread and opening the file included
(reading an hour of Opus packets takes ~0.5 s); past it the reply's error goes on with the
size estimate."""
MAX_PENDING = 4
"""Estimates that may be queued or running on `_ESTIMATES` at once; one more (a reader stuck
in FFmpeg, a burst of failures) is the size estimate at once, never queued with its audio."""
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
"""Bits a second taken for a WAV or FLAC file of unknown length: 16-bit 48 kHz mono PCM,
typical of a voice recording (FLAC halves it: counted half as long; 48 kHz stereo or 24-bit
counts it longer than it is)."""
COMPRESSED_BITRATE = 128_000
"""Bits a second taken for any other file of unknown length: the top of what speech is
usually encoded at (Discord's voice messages are ~32 kbps Opus: counted a quarter as long;
a 320 kbps MP3 is counted 2.5 times as long)."""
_LOSSLESS = frozenset({"wav", "flac"})
_BILLED_STATUSES = frozenset({"500", "504", "520", "524"})
"""The 5xx that may follow the work: an internal error, a gateway timing out on a provider
that had the file, or Cloudflare's 520 (its origin had the request and answered nothing
valid) and 524 (the origin took it and did not answer within 100 s). 502, 503, 521-523, 529
and the others are an overload or an upstream never reached."""

_ESTIMATES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transcription-estimate")
"""The estimates' one thread, made on demand. A job whose caller stopped waiting returns at
once when its turn comes, its audio already let go; a running one checks its time only
between packets (FFmpeg's parsing of a header cannot be stopped: a stuck one holds the thread,
and MAX_PENDING bounds what waits behind it)."""
_PENDING = threading.BoundedSemaphore(MAX_PENDING)
"""Taken by each job queued or running on `_ESTIMATES`, given back by the thread."""

log = structlog.get_logger(__name__)


def may_have_billed(err: TzurotError) -> bool:
    """Whether the transcription that failed with `err` may have been processed, and billed:
    no answer in time once sent, a connection dropped after the upload, a 500, 504, 520 or
    524 without a Retry-After, an unreadable answer; never a refusal, an overload, a request
    never sent nor an upload cut short while the client was writing it (NotReceived)."""
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


async def transcription_cut_off(
    provider: str, model: str, audio: bytes, content_type: str
) -> PaidCall:
    """The failed transcription of `audio`, estimated: its duration in seconds, as whisper
    bills it (request_type TRANSCRIPTION, `estimated`, no tokens)."""
    return _cut_off(provider, model, await estimated_seconds(audio, content_type))


def size_cut_off(provider: str, model: str, audio: bytes, content_type: str) -> PaidCall:
    """The same by `audio`'s size alone (`size_estimate`): what is said at once, while its
    duration is read."""
    return _cut_off(provider, model, size_estimate(len(audio), DEMUXERS.get(content_type, "")))


def _cut_off(provider: str, model: str, seconds: float) -> PaidCall:
    return PaidCall(
        TRANSCRIPTION, provider, model, TokenUsage(0, 0), audio_seconds=seconds, estimated=True
    )


async def estimated_seconds(audio: bytes, content_type: str) -> float:
    """The audio's seconds (at most MAX_ESTIMATED_SECONDS), read on `_ESTIMATES` within
    ESTIMATE_TIME_LIMIT; else (MAX_PENDING already there, any failure) `size_estimate`."""
    demuxer = DEMUXERS.get(content_type)
    if demuxer is None:
        return size_estimate(len(audio), "")
    seconds = None
    if _PENDING.acquire(blocking=False):
        job = _Job(audio, demuxer, time.monotonic() + ESTIMATE_TIME_LIMIT)
        try:
            seconds = await _estimate(job)
        # Broad on purpose: the estimate is a side note of a failure already on its way; no
        # bug or odd file in PyAV/FFmpeg may replace the reply's error (review 686 M1).
        except Exception:
            log.warning("transcription.cut_off_estimate_failed", exc_info=True)
        finally:
            job.audio = None  # a job still queued no longer holds the file
    if seconds is None:
        log.warning("transcription.cut_off_length_by_size", size=len(audio), demuxer=demuxer)
        return size_estimate(len(audio), demuxer)
    return seconds


class _Job:
    """One estimate for `_ESTIMATES`: `audio` is let go (None) once its caller stops waiting."""

    __slots__ = ("audio", "deadline", "demuxer")

    def __init__(self, audio: bytes, demuxer: str, deadline: float) -> None:
        self.audio: bytes | None = audio
        self.demuxer = demuxer
        self.deadline = deadline


async def _estimate(job: _Job) -> float | None:
    """`job` run on `_ESTIMATES` (which gives `_PENDING` back), awaited until its deadline."""
    context = contextvars.copy_context()  # the log context, as asyncio.to_thread
    try:
        running = _ESTIMATES.submit(context.run, _run, job)
    except BaseException:
        _PENDING.release()
        raise
    # Shielded: a job never cancelled always runs, so it always gives `_PENDING` back (a
    # cancelled one would stay queued without doing so); late, it returns at once.
    waited = asyncio.shield(asyncio.wrap_future(running))
    try:
        return await asyncio.wait_for(waited, max(job.deadline - time.monotonic(), 0))
    except TimeoutError:
        return None


def _run(job: _Job) -> float | None:
    """On `_ESTIMATES`: the job's seconds, or None when its caller stopped waiting."""
    try:
        audio, left = job.audio, job.deadline - time.monotonic()
        if audio is None or left <= 0:
            return None
        return _duration(audio, job.demuxer, left)
    # Broad on purpose, as in estimated_seconds: a reader's bug (PyAV, FFmpeg, an odd file)
    # is the size estimate, and a late job's error would be nobody's to read.
    except Exception:
        log.warning("transcription.cut_off_estimate_failed", exc_info=True)
        return None
    finally:
        _PENDING.release()


def size_estimate(size: int, demuxer: str) -> float:
    """Seconds of a file of `size` bytes of unknown length: at UNCOMPRESSED_BITRATE for WAV
    and FLAC, else COMPRESSED_BITRATE (at most MAX_ESTIMATED_SECONDS)."""
    bitrate = UNCOMPRESSED_BITRATE if demuxer in _LOSSLESS else COMPRESSED_BITRATE
    return round(min(size * 8 / bitrate, MAX_ESTIMATED_SECONDS), 3)


def _duration(audio: bytes, demuxer: str, time_limit: float) -> float | None:
    """The audio's seconds by its header or packets; None when they cannot say."""
    try:
        info = header_duration(
            audio, demuxer, max_seconds=MAX_ESTIMATED_SECONDS, time_limit=time_limit
        )
    except AudioError:
        return None
    return round(info.duration_secs, 3)
