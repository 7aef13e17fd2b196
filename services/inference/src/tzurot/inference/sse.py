"""A streamed chat completion read as plain JSON: each event's `data`, without typed models.

The openai SDK's `AsyncStream[ChatCompletionChunk]` builds pydantic models for every chunk
(`construct_type`: ~80 µs a chunk, ~40 ms of CPU for a 500-chunk answer); inference reads
five fields of each. `LlmClient` still sends the request through the SDK (auth, retries,
HTTP status → exception) and takes the raw `httpx2.Response`; `httpx2.EventSource` frames
its body (WHATWG rules: LF/CRLF/CR, `:` comments such as OpenRouter's keep-alive, events of
at most 1 MiB) and each `data` is parsed with `json.loads`. What goes wrong raises what
`AsyncStream` raised, so `provider_errors.provider_error` classifies it as before:

- an event whose JSON has a truthy `error` (OpenAI's shape, and OpenRouter's mid-generation
  error with `finish_reason: "error"`) → `ErrorEvent` (an `openai.APIError` whose `body` is
  the error object, so its `code` can be classified as an HTTP status would be);
- a `data` that is not a JSON object (or nested too deeply to parse), a body that is not an
  event stream, an event over the size limit → `openai.APIError`;
- a body that ends cleanly before `[DONE]` and before any `finish_reason` (a proxy or the
  provider dropped the answer) → `StreamCutShort`; a `finish_reason` without `[DONE]` is a
  whole answer (some providers never send `[DONE]`);
- the body timing out or breaking mid-stream → `openai.APITimeoutError` /
  `openai.APIConnectionError`;
- an `application/json` body (a provider that ignored `stream: true`) is its whole
  `chat.completion`, read as one chunk under the same rules (`_whole_answer`): a complete
  answer, never a failure before the first event (which would be sent again, and billed).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import httpx2
import openai

DONE = "[DONE]"
DRAIN_SECONDS = 0.1
MAX_JSON_BODY_BYTES = 8 * 1024 * 1024
"""The largest whole answer read from a provider that ignored `stream: true`."""
"""After [DONE], how long to read the rest of an HTTP/1.1 body so its connection is reused."""


class ErrorEvent(openai.APIError):
    """An event carrying `error` inside a 200 stream; `body` is that error object."""


class StreamCutShort(openai.APIError):
    """The body ended without `[DONE]` and without a `finish_reason`: the answer is partial."""


async def chat_chunks(response: httpx2.Response) -> AsyncGenerator[dict[str, Any], None]:
    """Each chunk of a streamed chat completion, as parsed JSON, up to `[DONE]`.

    Closes the response when done, abandoned or failed; StreamCutShort when the body ends
    before `[DONE]` and before any `finish_reason`."""
    if _is_json(response):
        async for chunk in _whole_answer(response):
            yield chunk
        return
    events = cast(AsyncGenerator[httpx2.ServerSentEvent, None], aiter(httpx2.EventSource(response)))
    finished = False
    try:
        try:
            async for event in events:
                if event.data.startswith(DONE):
                    if response.http_version == "HTTP/1.1":
                        await _drain(events)
                    return
                chunk = _chunk(event.data, response)
                finished = finished or _finishes(chunk)
                yield chunk
        except httpx2.SSEError as exc:
            raise openai.APIError(
                "not a readable event stream", response.request, body=None
            ) from exc
        except httpx2.TimeoutException as exc:
            raise openai.APITimeoutError(request=response.request) from exc
        except httpx2.RequestError as exc:
            raise openai.APIConnectionError(request=response.request) from exc
        if not finished:
            raise StreamCutShort(
                "the stream ended before the answer finished", response.request, body=None
            )
    finally:
        await events.aclose()
        await response.aclose()


def _is_json(response: httpx2.Response) -> bool:
    content_type, _, _ = response.headers.get("content-type", "").partition(";")
    return content_type.strip().lower() == "application/json"


async def _whole_answer(response: httpx2.Response) -> AsyncGenerator[dict[str, Any], None]:
    """A provider that ignored `stream: true` (some OpenAI-compatible proxies and local
    servers): its one `chat.completion` body, read as one chunk whose choices' `message`
    is their `delta` (tool calls numbered by their place), with the same checks as an
    event's: an `error` is ErrorEvent (OpenRouter's error in a 200 body), anything but a
    JSON object or a body over the size limit is malformed, and an answer without a
    `finish_reason` is StreamCutShort."""
    body = bytearray()
    try:
        try:
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > MAX_JSON_BODY_BYTES:
                    raise openai.APIError("answer body too large", response.request, body=None)
        except httpx2.TimeoutException as exc:
            raise openai.APITimeoutError(request=response.request) from exc
        except httpx2.RequestError as exc:
            raise openai.APIConnectionError(request=response.request) from exc
        chunk = _chunk(body.decode("utf-8", errors="replace"), response)
        choices = chunk.get("choices")
        if isinstance(choices, list):
            chunk["choices"] = [_as_delta(choice) for choice in choices]
        if not _finishes(chunk):
            raise StreamCutShort("the answer has no finish_reason", response.request, body=None)
        yield chunk
    finally:
        await response.aclose()


def _as_delta(choice: object) -> object:
    """A whole answer's choice as a chunk's: its `message` becomes the `delta`."""
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        return choice
    delta = dict(choice["message"])
    calls = delta.get("tool_calls")
    if isinstance(calls, list):
        delta["tool_calls"] = [
            {**call, "index": call.get("index", n)} if isinstance(call, dict) else call
            for n, call in enumerate(calls)
        ]
    return {**{k: v for k, v in choice.items() if k != "message"}, "delta": delta}


def _chunk(data: str, response: httpx2.Response) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        chunk = None
    if not isinstance(chunk, dict):
        raise openai.APIError("malformed stream event", response.request, body=None)
    error = chunk.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else None
        raise ErrorEvent(
            message if isinstance(message, str) and message else "error during streaming",
            response.request,
            body=error,
        )
    return chunk


def _finishes(chunk: dict[str, Any]) -> bool:
    """Whether a choice of this chunk carries a `finish_reason` (the answer is whole)."""
    choices = chunk.get("choices")
    return isinstance(choices, list) and any(
        isinstance(choice, dict)
        and isinstance(choice.get("finish_reason"), str)
        and bool(choice["finish_reason"])
        for choice in choices
    )


async def _drain(events: AsyncIterator[object]) -> None:
    """Reads what follows [DONE] (usually only the body's end) for a short while."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in events:
                pass
    except (TimeoutError, httpx2.HTTPError):
        pass  # the answer is complete; the connection is merely not reused
