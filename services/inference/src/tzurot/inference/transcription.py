"""A voice note's transcription while it runs: the provider's call, asked again as retries.py
allows, and what it may be billed, said as soon as the provider has the audio.

A transcription is answered in one body once the provider worked on the whole file, and it
bills that work even when its answer never comes back. A reply cut while it waits (its
client cancelled, the gateway's deadline, inference stopping) can report nothing more, so
the moment an attempt's upload is handed over whole (uploads.py) the reply says what it may
be billed (HelperCallPending: the audio's estimate, transcription_cut_off.py); the gateway
keeps it and records it only when the reply is cut before the outcome comes. The audio's
duration is read from the start, while it uploads (within 1.5 s); an upload out whole before
it is read is said at once by the file's size (`size_cut_off`), replaced by the duration's
estimate once read (the gateway keeps the latest for the attachment). The transcript never
waits for it (a transcript that comes first is said by its own count, attachments.py, while
it is cleaned up). An attempt the provider refuses and that is asked
again (a 429 whose Retry-After fits) is taken back (no calls); a refusal that is the
outcome (a 4xx) is not: the reply's error that follows it clears the estimate at the
gateway. Nothing is said of an upload never sent or never received whole (NotSent,
NotReceived): the provider has nothing to bill, and NotReceived is asked again once
(retries.py).

The call is bounded as a whole by the caller's deadline (RetryPolicy.time_left, the reply's:
its gRPC deadline less the report grace), not only step by step: a provider still at work
then is NoAnswerInTime, reported with its estimate (UsageSpent, before the reply's error)
while the gateway still listens. A call that failed once the provider may have processed
the audio adds that estimate to `unheard` before its error goes on.

Audio goes to the provider named `voice.<extension>`, the extension its MIME type's: OpenAI
reads the format from the file name alone (any other name is 400 "Invalid file format"), and
Discord's names are the uploader's (`.opus`, none at all). OpenAI's 25 MiB limit counts the
whole multipart request, so for OpenAI (by the base URL's host, as for dialects, or the
built-in `openai`) an audio file is taken only while it and its form
(TRANSCRIPTION_FORM_MARGIN) fit under it; `max_audio_bytes` bounds the file for every
provider.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import SecretStr

from tzurot.inference.dialects import dialect_of
from tzurot.inference.domain import Downloaded, HelperCallPending, PaidCall, Transcript
from tzurot.inference.providers import Provider
from tzurot.inference.retries import RetryPolicy, whole_answer
from tzurot.inference.transcription_cut_off import (
    may_have_billed,
    size_cut_off,
    transcription_cut_off,
)
from tzurot.runtime.errors import TzurotError

AUDIO_EXTENSIONS = {
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/m4a": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/webm": "webm",
    "audio/flac": "flac",
}
"""The file name extension each accepted audio type (attachments.AUDIO_TYPES) is sent with
(all in OpenAI's list: flac, m4a, mp3, mp4, mpeg, mpga, oga, ogg, wav, webm)."""
TRANSCRIPTION_REQUEST_LIMITS = {"openai": 26_214_400}
"""The largest `/audio/transcriptions` request, whole, a provider takes, by dialect (the
vendor at the base URL's host, whatever the provider is named: dialects.dialect_of). OpenAI:
25 MiB, refused with 413 "Maximum content size limit (26214400) exceeded")."""
TRANSCRIPTION_FORM_MARGIN = 16 * 1024
"""Bytes left for the form around the file: boundaries, part headers, the model's name (a
few hundred bytes in all)."""
_Note = Literal["sent", "refused", "read", "ended"]
"""What the attempts tell the reading: an upload handed over whole, that attempt refused
after it (taken back), the audio's duration read, the call over (its outcome is the
task's)."""


class Transcriber(Protocol):
    """What transcribes: LanguageModel.transcribe (ports.py)."""

    async def transcribe(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        audio: bytes,
        filename: str,
        content_type: str,
        time_limit: float | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Transcript: ...


@dataclass(frozen=True)
class Transcribing:
    """One transcription to make: the model, on a provider, with the key that pays for it."""

    provider: Provider
    api_key: SecretStr
    model: str
    audio: Downloaded
    filename: str


async def transcribed(
    call: Transcribing,
    llm: Transcriber,
    retry: RetryPolicy,
    *,
    index: int,
    unheard: list[PaidCall] | None = None,
) -> AsyncGenerator[HelperCallPending | Transcript, None]:
    """Yields a HelperCallPending for attachment `index` with the estimate as soon as an
    attempt's upload is handed over whole: by the audio's size until its duration is read,
    then by its duration (and one taking it back, no calls, when the provider refused that
    attempt and it is asked again), then the Transcript, as soon as it comes (not waiting
    for the duration). Each is said even when the outcome is known as it is: the outcome
    goes out only after more awaits, and replaces it. A failure once the provider may have
    processed the audio adds its duration's estimate to `unheard` before it is raised.
    Closing this ends the call."""
    notes: asyncio.Queue[_Note] = asyncio.Queue()
    # The audio's duration is read while it uploads (the same for every attempt), never
    # holding up the transcript; an upload out before it is read is said by its size.
    reading = asyncio.ensure_future(_estimate(call))
    reading.add_done_callback(lambda _: notes.put_nowait("read"))
    work = asyncio.ensure_future(_attempts(call, llm, retry, notes))
    work.add_done_callback(lambda _: notes.put_nowait("ended"))
    out = False  # an attempt's upload is out (and not refused)
    said: PaidCall | None = None
    try:
        while (note := await notes.get()) != "ended":
            out = note == "sent" or (out and note != "refused")
            estimate = None
            if out:
                estimate = reading.result() if reading.done() else _by_size(call)
            if estimate != said:
                said = estimate
                yield HelperCallPending(index, () if estimate is None else (estimate,))
        try:
            transcript = work.result()
        except TzurotError as err:
            if unheard is not None and may_have_billed(err):  # the same estimate as said
                unheard.append(await reading)
            raise
        yield transcript
    finally:
        for task in (work, reading):
            if not task.done():
                task.cancel()
        await asyncio.gather(work, reading, return_exceptions=True)


async def _estimate(call: Transcribing) -> PaidCall:
    return await transcription_cut_off(
        call.provider.name, call.model, call.audio.data, call.audio.content_type
    )


def _by_size(call: Transcribing) -> PaidCall:
    return size_cut_off(call.provider.name, call.model, call.audio.data, call.audio.content_type)


async def _attempts(
    call: Transcribing, llm: Transcriber, retry: RetryPolicy, notes: asyncio.Queue[_Note]
) -> Transcript:
    """The transcript, asked again as `retry` allows, each attempt within the time left;
    `notes` hears of each upload handed over whole, and of such an attempt then refused."""

    async def attempt() -> Transcript:
        sent = False

        def on_sent() -> None:
            nonlocal sent
            sent = True
            notes.put_nowait("sent")

        left = retry.time_left()
        try:
            return await llm.transcribe(
                call.provider,
                call.api_key,
                model=call.model,
                audio=call.audio.data,
                filename=call.filename,
                content_type=call.audio.content_type,
                time_limit=None if math.isinf(left) else left,
                on_sent=on_sent,
            )
        except TzurotError as err:
            if sent and not may_have_billed(err):
                notes.put_nowait("refused")  # nothing billed: taken back
            raise

    return await whole_answer(attempt, retry)


def audio_file_name(content_type: str) -> str:
    """The name audio of `content_type` is sent to transcription with: its extension is the
    format the provider reads it as."""
    return f"voice.{AUDIO_EXTENSIONS.get(content_type, 'ogg')}"


def audio_file_limit(max_audio_bytes: int, provider: str, base_url: str = "") -> int:
    """The largest audio file to transcribe with `provider` at `base_url`: `max_audio_bytes`,
    and no more than the request limit of the vendor answering there (by host, as the
    dialects decide) leaves for the file once the form is around it."""
    limit = TRANSCRIPTION_REQUEST_LIMITS.get(dialect_of(provider, base_url))
    if limit is None:
        return max_audio_bytes
    return min(max_audio_bytes, limit - TRANSCRIPTION_FORM_MARGIN)
