"""What inference sends to transcription, against the fake provider's OpenAI rules: the file is
named for its MIME type (OpenAI reads the format from the name's extension, and Discord names
are the uploader's: `.opus`, none at all), and for `openai` an audio file is taken only while
it and its multipart form fit OpenAI's 25 MiB request limit: one that would not is refused as
too large before the provider is asked (it would answer 413), not sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from tzurot.inference.attachments import (
    AUDIO_TYPES,
    AttachmentLimits,
    AttachmentReader,
    ModelTarget,
)
from tzurot.inference.domain import AttachmentRef, Downloaded
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import Provider
from tzurot.inference.transcription import (
    AUDIO_EXTENSIONS,
    TRANSCRIPTION_FORM_MARGIN,
    audio_file_limit,
)
from tzurot.runtime.errors import InvalidArgument
from tzurot.testing.fake_provider import DEFAULT_KEY, FakeProvider
from tzurot.testing.fake_speech import TRANSCRIPTION_FORMATS, TRANSCRIPTION_MAX_REQUEST_BYTES

pytestmark = pytest.mark.contract

MIB = 1024 * 1024


class Cdn:
    """Serves one file, refusing it past `max_bytes` as the real downloader does."""

    def __init__(self, data: bytes, content_type: str) -> None:
        self.data, self.content_type = data, content_type
        self.max_bytes: list[int] = []

    async def fetch(
        self, url: str, *, field: str, max_bytes: int, allowed_types: frozenset[str]
    ) -> Downloaded:
        self.max_bytes.append(max_bytes)
        if len(self.data) > max_bytes:
            raise InvalidArgument(field, "too large", reason="ATTACHMENT_TOO_LARGE")
        return Downloaded(self.data, self.content_type)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider() as provider:
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=60.0)
    try:
        yield client
    finally:
        await client.aclose()


async def transcribe(
    fake: FakeProvider, llm: LlmClient, cdn: Cdn, filename: str, *, provider: str = "openai"
) -> str:
    reader = AttachmentReader(cdn, llm, AttachmentLimits())
    target = ModelTarget(
        Provider(provider, fake.base_url), SecretStr(DEFAULT_KEY), "whisper-1", "user"
    )
    attachment = AttachmentRef(
        url="https://cdn.test/x", content_type=cdn.content_type, filename=filename
    )
    return (await reader.transcribe(attachment, "attachments[0]", target, None)).text


def test_every_audio_type_is_named_with_an_extension_openai_reads() -> None:
    assert set(AUDIO_EXTENSIONS) == AUDIO_TYPES
    assert set(AUDIO_EXTENSIONS.values()) <= set(TRANSCRIPTION_FORMATS)


@pytest.mark.parametrize(
    ("filename", "content_type", "sent"),
    [
        ("memo.opus", "audio/ogg", "voice.ogg"),
        ("", "audio/ogg", "voice.ogg"),
        ("track", "audio/mpeg", "voice.mp3"),
        ("Recording.m4a.download", "audio/x-m4a", "voice.m4a"),
        ("clip.wave", "audio/x-wav", "voice.wav"),
    ],
)
async def test_audio_is_named_for_its_type_and_transcribed(
    fake: FakeProvider, llm: LlmClient, filename: str, content_type: str, sent: str
) -> None:
    cdn = Cdn(b"OggS" + bytes(300), content_type)
    assert await transcribe(fake, llm, cdn, filename) == fake.transcript
    (heard,) = fake.transcription_requests()
    assert heard.body["file_name"] == sent
    assert heard.body["file_content_type"] == content_type


async def test_a_large_voice_message_within_openais_limit_is_transcribed(
    fake: FakeProvider, llm: LlmClient
) -> None:
    largest = TRANSCRIPTION_MAX_REQUEST_BYTES - TRANSCRIPTION_FORM_MARGIN
    cdn = Cdn(b"OggS" + bytes(largest - 4), "audio/ogg")
    assert await transcribe(fake, llm, cdn, "voice-message.ogg") == fake.transcript
    assert cdn.max_bytes == [largest]
    assert fake.transcription_requests()[0].body["file_size"] == largest


async def test_audio_whose_request_would_pass_openais_limit_is_not_sent(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """25 MiB less 100 bytes passes `max_audio_bytes` (25 MiB) but not with its form."""
    cdn = Cdn(b"OggS" + bytes(TRANSCRIPTION_MAX_REQUEST_BYTES - 104), "audio/ogg")
    with pytest.raises(InvalidArgument) as refused:
        await transcribe(fake, llm, cdn, "voice-message.ogg")
    assert refused.value.reason == "ATTACHMENT_TOO_LARGE"
    assert fake.transcription_requests() == []


def test_only_a_provider_with_a_known_request_limit_narrows_the_file() -> None:
    assert audio_file_limit(25 * MIB, "openai") == 25 * MIB - TRANSCRIPTION_FORM_MARGIN
    assert audio_file_limit(2000, "openai") == 2000
    assert audio_file_limit(100 * MIB, "groq") == 100 * MIB
