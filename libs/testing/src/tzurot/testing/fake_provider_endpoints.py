"""The fake provider's endpoints besides chat completions: the model list (each model's output
modalities, filtered as OpenRouter's), OpenRouter's GET /key, embeddings, OpenAI's
/images/generations, speech and transcriptions (their vendor rules: `fake_tools.py`,
`fake_speech.py`)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tzurot.testing.fake_provider_errors import error_body
from tzurot.testing.fake_provider_images import listed_models, output_modalities
from tzurot.testing.fake_provider_replies import embed, estimate_tokens
from tzurot.testing.fake_speech import (
    TRANSCRIPTION_MAX_REQUEST_BYTES,
    check_speech_request,
    check_transcription_file,
    speech_response,
    transcription_too_large,
)
from tzurot.testing.fake_tools import images_generations

if TYPE_CHECKING:
    from tzurot.testing.fake_provider import FakeProvider

UPLOAD_READ_BEFORE_RESET = 64 * 1024
"""What a transcription upload reset midway reads first (`reset_transcription_uploads`)."""


async def list_models(fake: FakeProvider, request: web.Request) -> web.StreamResponse:
    _, refused = await fake._admit(request, public=fake.public_models, billed=False)
    if refused:
        return refused
    await fake._key_check_held()
    data = listed_models(catalogue(fake), request.query.get("output_modalities"))
    return web.json_response({"object": "list", "data": data})


def catalogue(fake: FakeProvider) -> list[tuple[str, list[str]]]:
    """The models served, each with its output modalities: `models`, and with `any_model`
    the image models not among them."""
    served = list(fake.models)
    if fake.any_model:
        drawing = sorted(fake.image_models | fake.image_only_models)
        served += [m for m in drawing if m not in served]
    return [(m, output_modalities(m, fake.image_models, fake.image_only_models)) for m in served]


async def key_info(fake: FakeProvider, request: web.Request) -> web.StreamResponse:
    """OpenRouter's GET /key: the key's own limits; 401 for a key it does not know."""
    _, refused = await fake._admit(request, billed=False)
    if refused:
        return refused
    await fake._key_check_held()
    limit = None if fake.credit_remaining is None else max(fake.credit_remaining, 0) + 1
    return web.json_response(
        {
            "data": {
                "label": "fake key",
                "usage": 0,
                "limit": limit,
                "limit_remaining": fake.credit_remaining,
                "is_free_tier": False,
            }
        }
    )


async def embeddings(fake: FakeProvider, request: web.Request) -> web.StreamResponse:
    body, refused = await fake._admit(request)
    if refused:
        return refused
    inputs = body.get("input", [])
    texts = [inputs] if isinstance(inputs, str) else list(inputs)
    dims = int(body.get("dimensions") or fake.embedding_dimensions)
    data = [
        {"object": "embedding", "index": i, "embedding": embed(text, dims)}
        for i, text in enumerate(texts)
    ]
    tokens = sum(estimate_tokens(t) for t in texts)
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "model": body.get("model", ""),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


async def images_generation(fake: FakeProvider, request: web.Request) -> web.StreamResponse:
    body, refused = await fake._admit(request)
    if refused:
        return refused
    status, answer = images_generations(body, fake.image_models, image_bytes=fake.image_bytes)
    if status != 200:
        return error_body(status, answer["message"], answer["code"], "invalid_request_error")
    return web.json_response(answer)


async def speech(fake: FakeProvider, request: web.Request) -> web.StreamResponse:
    body, refused = await fake._admit(request)
    if refused:
        return refused
    error = check_speech_request(body)
    if error is not None:
        return error_body(400, error, "invalid_value", "invalid_request_error")
    return await speech_response(request, body)


async def transcription(fake: FakeProvider, request: web.Request) -> web.StreamResponse:
    if fake.reset_transcription_uploads > 0:
        fake.reset_transcription_uploads -= 1
        return await _reset_midway(request)
    return await _transcribed(fake, request)


async def _transcribed(fake: FakeProvider, request: web.Request) -> web.StreamResponse:
    body, refused = await fake._admit(request)
    if refused:
        return refused
    size = request.content_length or int(body.get("request_bytes") or 0)
    if size > TRANSCRIPTION_MAX_REQUEST_BYTES:
        return transcription_too_large(size)
    if not body.get("file_size"):
        return error_body(400, "no audio file", "invalid_file", "invalid_request_error")
    bad_name = check_transcription_file(str(body.get("file_name") or ""))
    if bad_name is not None:
        return bad_name
    if body.get("response_format") in ("text",):
        return await _delivered(fake, request, web.Response(text=fake.transcript))
    # OpenAI's usage: seconds of audio for whisper-1, tokens for gpt-4o-transcribe.
    usage: dict[str, Any] = {"type": "duration", "seconds": fake.transcript_seconds}
    if not str(body.get("model", "")).startswith("whisper"):
        output = estimate_tokens(fake.transcript)
        audio = int(body["file_size"]) // 100 + 1
        usage = {
            "type": "tokens",
            "input_tokens": audio,
            "output_tokens": output,
            "total_tokens": audio + output,
        }
    return await _delivered(
        fake, request, web.json_response({"text": fake.transcript, "usage": usage})
    )


async def _reset_midway(request: web.Request) -> web.Response:
    """Reads the start of the upload, then resets the connection (RST: SO_LINGER 0)."""
    await request.content.read(UPLOAD_READ_BEFORE_RESET)
    assert request.transport is not None
    sock = request.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    request.transport.abort()
    return web.Response(status=500)  # never sent: the connection is gone


async def _delivered(
    fake: FakeProvider, request: web.Request, answer: web.Response
) -> web.Response:
    """A transcription's `answer`, after `transcription_delay` (or until the client went
    away); none when its connection is to be dropped (`drop_transcriptions`)."""
    if fake.drop_transcriptions > 0:  # heard, then lost: no answer comes
        fake.drop_transcriptions -= 1
        assert request.transport is not None
        request.transport.close()
        return answer
    until = time.monotonic() + fake.transcription_delay
    while time.monotonic() < until:
        if request.transport is None or request.transport.is_closing():
            break
        await asyncio.sleep(min(0.02, max(until - time.monotonic(), 0.0)))
    return answer
