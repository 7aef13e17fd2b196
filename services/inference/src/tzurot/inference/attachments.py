"""Attachments of a message: downloaded within limits, then made readable for the model.

Images go to a vision model as image parts (data URLs, so the provider never fetches a
Discord CDN link that may have expired); for a model without vision, a configured vision
model describes them first and the description enters the prompt. Audio is transcribed
through `/audio/transcriptions` and cleaned by a cheap model; the transcript is what enters
the prompt and, through `ReplyFinished.user_content`, the history.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import httpx2 as httpx
from pydantic import SecretStr

from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import AttachmentRef, Completion, Downloaded, ImagePart
from tzurot.inference.ports import Downloader, LanguageModel
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.inference.thinking import split_thinking
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument, Unavailable

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
DESCRIBE_PROMPT = (
    "Describe this image for someone who cannot see it: what it shows, any text in it, "
    "and its mood. Be factual and concise."
)
CLEANUP_PROMPT = (
    "You fix speech-to-text transcripts. Add punctuation, capitalisation and paragraph "
    "breaks; remove filler repetitions; change nothing else. Answer with the transcript only."
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
class ModelTarget:
    """A model to call, on a provider, with the key that pays for it."""

    provider: Provider
    api_key: SecretStr
    model: str


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


class AttachmentReader:
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
        *,
        vision: bool,
        describer: ModelTarget | None,
        transcriber: ModelTarget | None,
        cleaner: ModelTarget | None,
    ) -> Prepared:
        self.check(attachments)
        prepared = Prepared()
        for index, attachment in enumerate(attachments):
            where = f"attachments[{index}]"
            label = attachment.filename or f"attachment {index + 1}"
            if kind_of(attachment) == "image":
                if attachment.description:
                    prepared.notes.append(f"[Image {label}: {attachment.description}]")
                    prepared.attachments.append(attachment)
                    continue
                image = await self.image_part(attachment, where)
                if vision:
                    prepared.images.append(image)
                    prepared.attachments.append(attachment)
                    continue
                if describer is None:
                    raise _no_model("image description")
                description = await self.describe(image, describer)
                prepared.notes.append(f"[Image {label}: {description}]")
                prepared.attachments.append(replace(attachment, description=description))
            else:
                transcript = attachment.description
                if not transcript:
                    if transcriber is None:
                        raise _no_model("transcription")
                    transcript = await self.transcribe(attachment, where, transcriber, cleaner)
                prepared.notes.append(f"[Voice message: {transcript}]")
                prepared.attachments.append(replace(attachment, description=transcript))
        return prepared

    async def image_part(self, attachment: AttachmentRef, where: str) -> ImagePart:
        got = await self._downloader.fetch(
            attachment.url,
            field=where,
            max_bytes=self._limits.max_image_bytes,
            allowed_types=IMAGE_TYPES,
        )
        encoded = base64.b64encode(got.data).decode()
        return ImagePart(f"data:{got.content_type};base64,{encoded}")

    async def describe(self, image: ImagePart, target: ModelTarget) -> str:
        messages: list[ChatMessage] = [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": DESCRIBE_PROMPT},
                    {"type": "image_url", "image_url": {"url": image.data_url}},
                ],
            }
        ]
        return await self._complete(target, messages)

    async def transcribe(
        self,
        attachment: AttachmentRef,
        where: str,
        target: ModelTarget,
        cleaner: ModelTarget | None,
    ) -> str:
        got = await self._downloader.fetch(
            attachment.url,
            field=where,
            max_bytes=self._limits.max_audio_bytes,
            allowed_types=AUDIO_TYPES,
        )
        raw = await self._llm.transcribe(
            target.provider,
            target.api_key,
            model=target.model,
            audio=got.data,
            filename=attachment.filename or "voice.ogg",
            content_type=got.content_type,
        )
        raw = raw.strip()
        if not raw or cleaner is None:
            return raw
        messages: list[ChatMessage] = [
            {"role": "system", "content": CLEANUP_PROMPT},
            {"role": "user", "content": raw},
        ]
        cleaned = await self._complete(cleaner, messages, temperature=0.0)
        return cleaned or raw

    async def _complete(
        self, target: ModelTarget, messages: list[ChatMessage], *, temperature: float | None = None
    ) -> str:
        body = {} if temperature is None else {"temperature": temperature}
        stream = self._llm.stream_chat(
            target.provider,
            target.api_key,
            model=target.model,
            call=ProviderCall(messages=messages, body=body),
        )
        text = ""
        async with aclosing(stream):
            async for event in stream:
                if isinstance(event, Completion):
                    text = event.content
        # A reasoning model used as describer may think in tags: the user never sees that.
        return split_thinking(text)[0]


def _no_model(what: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"no model is configured for {what}", reason="ATTACHMENT_MODEL_MISSING"
    )
