"""The fake provider's transcription endpoint refuses what OpenAI refuses, in OpenAI's shape:
a request over 25 MiB (the whole multipart body) is 413 "Maximum content size limit
(26214400) exceeded", a file name whose extension is no audio format OpenAI reads is 400
"Invalid file format"; and a body over aiohttp's default 1 MiB is read, not refused with a
plain-text 413 no vendor sends. Its context check counts `max_completion_tokens` as it counts
`max_tokens`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest

from tzurot.testing.fake_provider import DEFAULT_KEY, FakeProvider
from tzurot.testing.fake_speech import TRANSCRIPTION_FORMATS, TRANSCRIPTION_MAX_REQUEST_BYTES

AUTH = {"Authorization": f"Bearer {DEFAULT_KEY}"}


@pytest.fixture
async def http() -> AsyncIterator[tuple[FakeProvider, httpx.AsyncClient]]:
    async with FakeProvider() as fake, httpx.AsyncClient(base_url=fake.base_url) as client:
        yield fake, client


async def transcribe(client: httpx.AsyncClient, name: str, size: int) -> httpx.Response:
    return await client.post(
        "/audio/transcriptions",
        headers=AUTH,
        data={"model": "whisper-1"},
        files={"file": (name, b"OggS" + bytes(size - 4), "audio/ogg")},
        timeout=60,
    )


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 5 * 1024 * 1024, 24 * 1024 * 1024])
async def test_audio_over_a_mebibyte_within_25_mib_is_transcribed(
    http: tuple[FakeProvider, httpx.AsyncClient], size: int
) -> None:
    fake, client = http
    answer = await transcribe(client, "voice.ogg", size)
    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == fake.transcript
    assert fake.transcription_requests()[-1].body["file_size"] == size


async def test_a_request_over_25_mib_is_openais_413(
    http: tuple[FakeProvider, httpx.AsyncClient],
) -> None:
    _, client = http
    # The file alone fits; with its form around it the request does not.
    answer = await transcribe(client, "voice.ogg", TRANSCRIPTION_MAX_REQUEST_BYTES - 50)
    assert answer.status_code == 413
    sent = int(answer.request.headers["content-length"])
    assert sent > TRANSCRIPTION_MAX_REQUEST_BYTES
    assert answer.json() == {
        "error": {
            "message": f"Maximum content size limit (26214400) exceeded ({sent} bytes read)",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }


@pytest.mark.parametrize("name", ["recording.bin", "voice-message", "memo.opus", "clip.aac"])
async def test_a_file_name_without_an_audio_extension_is_refused(
    http: tuple[FakeProvider, httpx.AsyncClient], name: str
) -> None:
    _, client = http
    answer = await transcribe(client, name, 100)
    assert answer.status_code == 400
    listed = ", ".join(f"'{f}'" for f in TRANSCRIPTION_FORMATS)
    assert answer.json() == {
        "error": {
            "message": f"Invalid file format. Supported formats: [{listed}]",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


@pytest.mark.parametrize("name", [f"voice.{f}" for f in TRANSCRIPTION_FORMATS])
async def test_every_listed_extension_is_taken(
    http: tuple[FakeProvider, httpx.AsyncClient], name: str
) -> None:
    _, client = http
    assert (await transcribe(client, name, 100)).status_code == 200


async def test_a_chat_body_over_a_mebibyte_is_read(
    http: tuple[FakeProvider, httpx.AsyncClient],
) -> None:
    _, client = http
    image = "data:image/png;base64," + "A" * (2 * 1024 * 1024)
    answer = await client.post(
        "/chat/completions",
        headers=AUTH,
        json={
            "model": "fake/echo",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this?"},
                        {"type": "image_url", "image_url": {"url": image}},
                    ],
                }
            ],
        },
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_the_context_check_counts_either_output_limit(
    http: tuple[FakeProvider, httpx.AsyncClient], field: str
) -> None:
    fake, client = http
    fake.context_limit = 1000
    answer = await client.post(
        "/chat/completions",
        headers=AUTH,
        json={
            "model": "fake/echo",
            "messages": [{"role": "user", "content": "hello"}],
            field: 5000,
        },
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "context_length_exceeded"
