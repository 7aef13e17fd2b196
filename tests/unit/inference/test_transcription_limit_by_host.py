"""OpenAI's 25 MiB transcription limit counts the whole multipart request, so the file is
bounded below it by the form's margin. Which provider that is, is decided as the dialects
decide it: by the base URL's host. An operator's provider named anything but pointing at
api.openai.com is bounded too (else the audio is downloaded, then refused with 413)."""

from __future__ import annotations

from typing import cast

import pytest
from pydantic import SecretStr

from tzurot.inference.attachments import AttachmentLimits, AttachmentReader, ModelTarget
from tzurot.inference.domain import AttachmentRef, Downloaded
from tzurot.inference.ports import LanguageModel
from tzurot.inference.providers import Provider
from tzurot.inference.transcription import (
    TRANSCRIPTION_FORM_MARGIN,
    TRANSCRIPTION_REQUEST_LIMITS,
    audio_file_limit,
)

MIB = 1024 * 1024
OPENAI_LARGEST = TRANSCRIPTION_REQUEST_LIMITS["openai"] - TRANSCRIPTION_FORM_MARGIN


class NotDownloaded(Exception):
    """The download's bound is all this test needs."""


class Cdn:
    def __init__(self) -> None:
        self.max_bytes: list[int] = []

    async def fetch(
        self, url: str, *, field: str, max_bytes: int, allowed_types: frozenset[str]
    ) -> Downloaded:
        self.max_bytes.append(max_bytes)
        raise NotDownloaded


@pytest.mark.parametrize(
    ("name", "base_url", "largest"),
    [
        ("work-openai", "https://api.openai.com/v1", OPENAI_LARGEST),
        ("azure", "https://mine.openai.azure.com/openai", OPENAI_LARGEST),
        ("openai", "", OPENAI_LARGEST),
        ("groq", "https://api.groq.com/openai/v1", 100 * MIB),
    ],
)
async def test_the_transcription_download_is_bounded_by_the_host_s_vendor(
    name: str, base_url: str, largest: int
) -> None:
    cdn = Cdn()
    never_asked = cast(LanguageModel, object())  # the download fails first
    reader = AttachmentReader(cdn, never_asked, AttachmentLimits(max_audio_bytes=100 * MIB))
    target = ModelTarget(Provider(name, base_url), SecretStr("sk-user"), "whisper-1", "user")
    attachment = AttachmentRef(url="https://cdn.test/x", content_type="audio/ogg", filename="")
    with pytest.raises(NotDownloaded):
        await reader.transcribe(attachment, "attachments[0]", target, None)
    assert cdn.max_bytes == [largest]
    assert audio_file_limit(100 * MIB, name, base_url) == largest
