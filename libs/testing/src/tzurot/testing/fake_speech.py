"""OpenAI's audio endpoints for the fake provider, from the API reference.

`POST /v1/audio/speech`: `model`, `input` (at most 4096 characters) and `voice` are required;
`response_format` is one of mp3 (default), opus (Ogg), aac, flac, wav or pcm (raw 24 kHz
signed 16-bit little-endian mono); `speed` is 0.25-4. The answer is real audio, its length
growing with the input, sent chunked as the vendor streams it. Local servers (Kokoro-FastAPI,
openedai-speech) speak the same protocol.

`POST /v1/audio/transcriptions`'s refusals: a request (the whole multipart body, not only the
file) over 25 MiB is 413 "Maximum content size limit (26214400) exceeded (N bytes read)",
type `server_error` (help.openai.com article 7031512 gives the limit; the body is as
clients quote it); the audio's format is read from the file name's extension, and any other
is 400 "Invalid file format. Supported formats: [...]" (type `invalid_request_error`, no
code): a file named `voice.bin` or `recording` is refused whatever its content.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tzurot.audio import encode_tone

MAX_SPEECH_INPUT = 4096
SPEECH_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "kokoro")
SPEECH_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
    "af_bella", "af_sky",
)  # fmt: skip
_FORMATS = {
    "mp3": ("mp3", "audio/mpeg"),
    "opus": ("ogg", "audio/ogg"),
    "aac": ("aac", "audio/aac"),
    "flac": ("flac", "audio/flac"),
    "wav": ("wav", "audio/wav"),
    "pcm": ("pcm", "audio/pcm"),
}
TRANSCRIPTION_MAX_REQUEST_BYTES = 26_214_400
"""OpenAI's limit on a whole `/audio/transcriptions` request (25 MiB)."""
TRANSCRIPTION_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
"""The file name extensions OpenAI transcribes, in its refusal's order."""
_PCM_RATE = 24_000
_CHARS_PER_SECOND = 15.0


def check_speech_request(body: dict[str, Any]) -> str | None:  # noqa: PLR0911  # one message per vendor rule
    """The vendor's 400 message for a request it refuses, or None."""
    model, text, voice = body.get("model"), body.get("input"), body.get("voice")
    if not isinstance(model, str) or not model:
        return "you must provide a model parameter"
    if model not in SPEECH_MODELS:
        return f"Invalid value: '{model}'. Supported values are: {', '.join(SPEECH_MODELS)}."
    if not isinstance(text, str) or not text:
        return "[{'type': 'missing', 'loc': ('body', 'input'), 'msg': 'Field required'}]"
    if len(text) > MAX_SPEECH_INPUT:
        return (
            f"[{{'type': 'string_too_long', 'loc': ('body', 'input'), "
            f"'msg': 'String should have at most {MAX_SPEECH_INPUT} characters'}}]"
        )
    if voice not in SPEECH_VOICES:
        return f"Invalid value: '{voice}'. Supported values are: {', '.join(SPEECH_VOICES)}."
    if body.get("response_format", "mp3") not in _FORMATS:
        known = ", ".join(_FORMATS)
        return f"Invalid value: '{body.get('response_format')}'. Supported values are: {known}."
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
        return "Invalid 'speed': must be a number from 0.25 to 4.0."
    return None


async def speech_response(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    fmt, content_type = _FORMATS[body.get("response_format", "mp3")]
    seconds = max(0.5, len(body["input"]) / _CHARS_PER_SECOND)
    audio = await asyncio.to_thread(encode_tone, seconds, fmt=fmt, rate=_PCM_RATE)
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    for start in range(0, len(audio), 4096):
        await response.write(audio[start : start + 4096])
    await response.write_eof()
    return response


def transcription_too_large(size: int) -> web.Response:
    """OpenAI's 413 for a transcription request of `size` bytes over its limit."""
    message = (
        f"Maximum content size limit ({TRANSCRIPTION_MAX_REQUEST_BYTES}) exceeded "
        f"({size} bytes read)"
    )
    error = {"message": message, "type": "server_error", "param": None, "code": None}
    return web.json_response({"error": error}, status=413)


def check_transcription_file(file_name: str) -> web.Response | None:
    """OpenAI's 400 for a file name whose extension is no format it transcribes; None when
    the name is fine (the format is read from the name, not from the Content-Type)."""
    _, dot, extension = file_name.rpartition(".")
    if dot and extension.lower() in TRANSCRIPTION_FORMATS:
        return None
    listed = ", ".join(f"'{name}'" for name in TRANSCRIPTION_FORMATS)
    message = f"Invalid file format. Supported formats: [{listed}]"
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return web.json_response({"error": error}, status=400)
