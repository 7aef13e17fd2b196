"""Attachments of a message: downloaded within limits, then made readable for the model.

Images go to a vision model as image parts (data URLs, so the provider never fetches a
Discord CDN link that may have expired); for a model without vision, a configured vision
model describes them first and the description enters the prompt. Audio is transcribed
through `/audio/transcriptions` and cleaned by a cheap model; the transcript is what enters
the prompt and, through `ReplyFinished.user_content`, the history.

Each attachment read by a helper model is announced as it is paid for (`AttachmentRead`,
with every call's usage): the gateway records the usage and keeps the text, and gives it
back as the attachment's description when the job runs again, which is then not paid twice.
A failed clean-up leaves the raw transcript (paid already), not an error; when it failed
because the provider refused the user's own key, the reading names that provider
(`refused_keys`), so gateway marks the key inactive all the same. A helper model's call that
failed once its request went out (begun, or unanswered in time) may have been billed: its
estimate (broken_off.helper_cut_off) is reported as paid, not delivered (UsageSpent, failed,
estimated): a clean-up's right after the reading that did without it, a description's just
before the reply's error (readings.py). So is a transcription that failed once the provider
had the whole upload (no answer in time, a dropped connection, a 500 or 504), estimated by
the audio's duration (transcription_cut_off.py), before the reply's error. What each call
may bill is said as soon as the provider has its whole request (HelperCallPending: a
description's or clean-up's prompt, readings.py; a transcription's audio, transcription.py;
then a transcript's own count while it is cleaned up), for a reply cut before its outcome.
Each call is asked again only as retries.py allows (a 429 once,
within the caller's time; an upload never received whole once): a rate-limited reading is
RESOURCE_EXHAUSTED with the provider's Retry-After, as an answer's would be.
A refused key (INVALID_API_KEY) says whose it was (`key_source`), as an answer's does, so
gateway marks the user's stored key for the helper's provider inactive.

A reply whose answer takes no key (a keyless provider's) is not refused for a helper model
the user has no key for (NoKeyFor, helper_models.py): the image or voice note it would read
is neither fetched nor read, and a note in the message says so, naming the provider and
`/wallet set`, as the bot's notes say of the files it does not send.

Audio goes to the provider named `voice.<extension>`, within the size its vendor takes
(transcription.py: audio_file_name, audio_file_limit).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import httpx2 as httpx

from tzurot.inference.domain import (
    TRANSCRIPTION,
    AttachmentRead,
    AttachmentRef,
    Downloaded,
    HelperCallPending,
    ImagePart,
    PaidCall,
    Transcript,
    UsageSpent,
)
from tzurot.inference.ports import Downloader, LanguageModel
from tzurot.inference.readings import (
    CLEANUP_PROMPT,
    DESCRIBE_PROMPT,
    HelperReadings,
    ModelTarget,
    NoKeyFor,
    Reading,
    paid_call,
)
from tzurot.inference.retries import RetryPolicy
from tzurot.inference.transcription import (
    Transcribing,
    audio_file_limit,
    audio_file_name,
    transcribed,
)
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, TzurotError, Unavailable

__all__ = [  # ModelTarget, Reading and the prompts live in readings.py
    "AUDIO_TYPES",
    "CLEANUP_PROMPT",
    "DESCRIBE_PROMPT",
    "IMAGE_TYPES",
    "AttachmentLimits",
    "AttachmentReader",
    "HttpDownloader",
    "ModelTarget",
    "NoKeyFor",
    "Prepared",
    "Reading",
    "kind_of",
]

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
AUDIO_TYPES = frozenset(
    {
        "audio/ogg",
        "audio/mpeg",
        "audio/mp3",
        "audio/mp4",
        "audio/x-m4a",
        "audio/m4a",
        "audio/wav",
        "audio/x-wav",
        "audio/webm",
        "audio/flac",
    }
)


def _mime(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def kind_of(attachment: AttachmentRef) -> str:
    mime = _mime(attachment.content_type)
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("audio/"):
        return "audio"
    return "other"


class HttpDownloader:
    """Streams a download with httpx, refusing it as soon as it is too large or mistyped."""

    def __init__(self, client: httpx.AsyncClient, allowed_hosts: Sequence[str]) -> None:
        self._client = client
        self._hosts = frozenset(host.lower() for host in allowed_hosts)

    async def fetch(
        self, url: str, *, field: str, max_bytes: int, allowed_types: frozenset[str]
    ) -> Downloaded:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or (parts.hostname or "") not in self._hosts:
            raise InvalidArgument(
                field, "attachments are fetched only from Discord's CDN", reason="ATTACHMENT_HOST"
            )
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise FailedPrecondition(
                        f"the attachment could not be downloaded (HTTP {response.status_code}); "
                        "it may have expired: send it again",
                        reason="ATTACHMENT_UNAVAILABLE",
                    )
                mime = _mime(response.headers.get("content-type", ""))
                if mime not in allowed_types:
                    raise _bad_type(field, mime)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _too_large(field, max_bytes)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(field, max_bytes)
                    chunks.append(chunk)
        except httpx.HTTPError:
            raise Unavailable(
                "the attachment could not be downloaded; try again",
                reason="ATTACHMENT_UNREACHABLE",
            ) from None
        return Downloaded(b"".join(chunks), mime)


def _too_large(field: str, max_bytes: int) -> InvalidArgument:
    return InvalidArgument(
        field,
        f"the attachment is larger than {_size(max_bytes)}",
        reason="ATTACHMENT_TOO_LARGE",
        metadata={"max_bytes": str(max_bytes)},
    )


def _bad_type(field: str, mime: str) -> InvalidArgument:
    return InvalidArgument(
        field,
        f"attachments of type {mime or 'unknown'!r} are not supported "
        "(images: PNG, JPEG, GIF, WebP; audio: OGG, MP3, M4A, WAV, WebM, FLAC)",
        reason="ATTACHMENT_TYPE_NOT_SUPPORTED",
    )


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n} bytes"


@dataclass(frozen=True)
class AttachmentLimits:
    max_image_bytes: int = 10 * 1024 * 1024
    max_audio_bytes: int = 25 * 1024 * 1024
    max_attachments: int = 10


@dataclass
class Prepared:
    """What the attachments add: image parts, text for the message, filled-in attachments."""

    images: list[ImagePart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    attachments: list[AttachmentRef] = field(default_factory=list)
    refused_keys: set[str] = field(default_factory=set)
    """Providers whose key from the user's wallet refused a call the readings did without
    (a clean-up): never reported used."""


class AttachmentReader(HelperReadings):
    def __init__(
        self, downloader: Downloader, llm: LanguageModel, limits: AttachmentLimits
    ) -> None:
        self._downloader = downloader
        self._llm = llm
        self._limits = limits

    def check(self, attachments: Sequence[AttachmentRef]) -> None:
        """Count, type and declared size: refused before anything is fetched or paid for."""
        if len(attachments) > self._limits.max_attachments:
            raise InvalidArgument(
                "attachments",
                f"at most {self._limits.max_attachments} attachments per message",
                reason="TOO_MANY_ATTACHMENTS",
            )
        for index, attachment in enumerate(attachments):
            where = f"attachments[{index}]"
            kind = kind_of(attachment)
            mime = _mime(attachment.content_type)
            allowed = IMAGE_TYPES if kind == "image" else AUDIO_TYPES if kind == "audio" else ()
            if mime not in allowed:
                raise _bad_type(where, mime)
            limit = (
                self._limits.max_image_bytes if kind == "image" else self._limits.max_audio_bytes
            )
            if attachment.size_bytes > limit:
                raise _too_large(where, limit)

    async def prepare(
        self,
        attachments: Sequence[AttachmentRef],
        prepared: Prepared,
        *,
        vision: bool,
        describer: ModelTarget | NoKeyFor | None,
        transcriber: ModelTarget | NoKeyFor | None,
        cleaner: ModelTarget | None,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  # frozen: one shared default is fine
    ) -> AsyncGenerator[AttachmentRead | UsageSpent | HelperCallPending, None]:
        """Fills `prepared` attachment by attachment; yields each one a helper model read,
        as soon as it is paid for (an attachment with a description is not read again), a
        helper call that failed once its request went out, estimated (UsageSpent, failed):
        a clean-up's after its reading, a description's before its error; and what the
        helper calls may be billed while the provider has their requests (pending)."""
        self.check(attachments)
        for index, attachment in enumerate(attachments):
            if kind_of(attachment) == "image":
                said = self._image(index, attachment, prepared, vision, describer, retry=retry)
            else:
                said = self._voice_note(
                    index, attachment, prepared, transcriber, cleaner, retry=retry
                )
            async with aclosing(said):
                async for step in said:
                    yield step

    async def _image(
        self,
        index: int,
        attachment: AttachmentRef,
        prepared: Prepared,
        vision: bool,
        describer: ModelTarget | NoKeyFor | None,
        *,
        retry: RetryPolicy,
    ) -> AsyncGenerator[AttachmentRead | UsageSpent | HelperCallPending, None]:
        """An image into `prepared`: as an image part for a vision model, else as its
        description (read now, unless it has one): yields what the description may be billed
        while the provider has it (pending), its reading as paid, and its estimate when it
        failed once sent (before its error)."""
        where = f"attachments[{index}]"
        label = attachment.filename or f"attachment {index + 1}"
        if attachment.description:
            prepared.notes.append(f"[Image {label}: {attachment.description}]")
            prepared.attachments.append(attachment)
            return
        if vision:
            prepared.images.append(await self.image_part(attachment, where))
            prepared.attachments.append(attachment)
            return
        if isinstance(describer, NoKeyFor):  # not fetched, not paid
            prepared.notes.append(describer.unread(f"Image {label}", "describing it"))
            prepared.attachments.append(attachment)
            return
        if describer is None:
            raise _no_model("image description")
        image = await self.image_part(attachment, where)
        cut_off: list[PaidCall] = []
        steps = self.describing(index, image, describer, retry=retry, cut_off=cut_off)
        description = _HelperRead(steps, cut_off)
        async with aclosing(description.said()) as said:
            async for step in said:
                yield step
        described = description.reading()
        read = replace(attachment, description=described.text)
        yield AttachmentRead(index, read, described.paid)
        prepared.notes.append(f"[Image {label}: {described.text}]")
        prepared.attachments.append(read)

    async def _voice_note(
        self,
        index: int,
        attachment: AttachmentRef,
        prepared: Prepared,
        transcriber: ModelTarget | NoKeyFor | None,
        cleaner: ModelTarget | None,
        *,
        retry: RetryPolicy,
    ) -> AsyncGenerator[AttachmentRead | UsageSpent | HelperCallPending, None]:
        """An audio attachment's transcript into `prepared` (read now, unless it has one):
        yields what its calls may be billed while the provider has them (pending),
        its reading as paid, a clean-up that failed once sent (after the reading) and a
        transcription that failed once the provider may have processed it (before its
        error), both estimated."""
        transcript = attachment.description
        if not transcript:
            if isinstance(transcriber, NoKeyFor):  # not fetched, not paid
                label = attachment.filename or f"attachment {index + 1}"
                note = transcriber.unread(f"Voice message {label}", "transcribing it")
                prepared.notes.append(note)
                prepared.attachments.append(attachment)
                return
            if transcriber is None:
                raise _no_model("transcription")
            unheard: list[PaidCall] = []
            where = f"attachments[{index}]"
            hearing = self.hearing(
                attachment, where, transcriber, cleaner, index=index, retry=retry, unheard=unheard
            )
            transcription = _HelperRead(hearing, unheard)
            async with aclosing(transcription.said()) as said:
                async for step in said:
                    yield step
            heard = transcription.reading()
            transcript = heard.text
            yield AttachmentRead(
                index, replace(attachment, description=transcript), heard.paid, heard.refused_keys
            )
            prepared.refused_keys.update(heard.refused_keys)
            if heard.cut_off:  # the clean-up, failed once sent: paid, not delivered
                yield UsageSpent(heard.cut_off, failed=True)
        prepared.notes.append(f"[Voice message: {transcript}]")
        prepared.attachments.append(replace(attachment, description=transcript))

    async def image_part(self, attachment: AttachmentRef, where: str) -> ImagePart:
        got = await self._downloader.fetch(
            attachment.url,
            field=where,
            max_bytes=self._limits.max_image_bytes,
            allowed_types=IMAGE_TYPES,
        )
        encoded = base64.b64encode(got.data).decode()
        return ImagePart(f"data:{got.content_type};base64,{encoded}")

    async def transcribe(
        self,
        attachment: AttachmentRef,
        where: str,
        target: ModelTarget,
        cleaner: ModelTarget | None,
        *,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  # frozen: one shared default is fine
        unheard: list[PaidCall] | None = None,
    ) -> Reading:
        """The reading `hearing` ends with (what it says on the way left out)."""
        hearing = self.hearing(attachment, where, target, cleaner, retry=retry, unheard=unheard)
        async with aclosing(hearing):
            async for step in hearing:
                if isinstance(step, Reading):
                    return step
        raise AssertionError("a hearing ends with its reading, or raises")

    async def hearing(
        self,
        attachment: AttachmentRef,
        where: str,
        target: ModelTarget,
        cleaner: ModelTarget | None,
        *,
        index: int = 0,
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008  # frozen: one shared default is fine
        unheard: list[PaidCall] | None = None,
    ) -> AsyncGenerator[HelperCallPending | Reading, None]:
        """Yields what the transcription may be billed while the provider has the audio
        (HelperCallPending, transcription.py), then the transcript, cleaned when a cleaner
        is set and its call succeeds (its own count said pending meanwhile, with the
        clean-up's, readings.py); otherwise the raw transcript, which is paid for already
        (with the clean-up's estimate when it failed once its request went out:
        `Reading.cut_off`). A transcription that failed after the provider may have
        processed the audio adds its estimate to `unheard` before the error goes on."""
        got = await self._downloader.fetch(
            attachment.url,
            field=where,
            max_bytes=audio_file_limit(
                self._limits.max_audio_bytes, target.provider.name, target.provider.base_url
            ),
            allowed_types=AUDIO_TYPES,
        )
        call = Transcribing(
            target.provider, target.api_key, target.model, got, audio_file_name(got.content_type)
        )
        steps = transcribed(call, self._llm, retry, index=index, unheard=unheard)
        heard = None
        with target.names_refusal():
            async with aclosing(steps):
                async for step in steps:
                    if isinstance(step, Transcript):
                        heard = step
                    else:
                        yield step
        assert heard is not None  # transcribed ends with its transcript, or raises
        raw = heard.text.strip()
        paid = (paid_call(TRANSCRIPTION, target, heard.usage, heard.audio_seconds),)
        if not raw or cleaner is None:
            yield Reading(raw, paid)
            return
        # Its own count from now (not the estimate): a reply cut while the transcript is
        # cleaned up counts the transcription as the provider billed it.
        yield HelperCallPending(index, paid)
        cleaning = self.cleaning(index, raw, paid, cleaner, retry=retry)
        async with aclosing(cleaning):
            async for cleaned in cleaning:
                yield cleaned


class _HelperRead:
    """One attachment read by helper models (a description, a hearing): what its steps say
    while the provider has a request is passed on, the Reading they end with is kept. When
    they fail, the calls in `cut_off` (billed, maybe: failed once sent, estimated) are said
    before the error goes on; the steps add them to that list as they fail."""

    def __init__(
        self, steps: AsyncGenerator[HelperCallPending | Reading, None], cut_off: list[PaidCall]
    ) -> None:
        self._steps = steps
        self._cut_off = cut_off
        self._reading: Reading | None = None

    async def said(self) -> AsyncGenerator[HelperCallPending | UsageSpent, None]:
        """The steps but their Reading; then, on an error, the cut-off calls' usage."""
        try:
            async with aclosing(self._steps):
                async for step in self._steps:
                    if isinstance(step, Reading):
                        self._reading = step
                    else:
                        yield step  # said while the provider has it
        except TzurotError:
            if self._cut_off:  # billed, maybe: said before the reply's error
                yield UsageSpent(tuple(self._cut_off), failed=True)
            raise

    def reading(self) -> Reading:
        """The Reading the steps ended with, once `said` is read to its end."""
        assert self._reading is not None  # the steps end with their reading, or raise
        return self._reading


def _no_model(what: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"no model is configured for {what}", reason="ATTACHMENT_MODEL_MISSING"
    )
