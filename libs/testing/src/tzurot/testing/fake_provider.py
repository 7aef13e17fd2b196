"""A local OpenAI-compatible provider, faked at the HTTP level so the real `openai` client runs.

Serves `POST /v1/chat/completions` (SSE streaming with a final usage chunk, or one JSON body),
`GET /v1/models`, `POST /v1/embeddings`, `POST /v1/audio/transcriptions` (multipart, like
Whisper, with OpenAI's usage: seconds for `whisper*`, tokens otherwise), `POST /v1/audio/speech`
(real audio in the asked `response_format`, see `fake_speech.py`) and
`POST /v1/images/generations`. Tool calling follows OpenAI's protocol (see `fake_tools.py`):
`tools` and `tool_choice` are validated as strictly as the vendor does,
the message sequence must answer every tool call, tool calls stream as `tool_calls` deltas
ending with `finish_reason: "tool_calls"`; a model in `no_tool_models` refuses tools with
OpenRouter's 404, as does any model when the request's `provider.only` (OpenRouter's routing)
names only upstreams in `no_tool_hosts`; `keep_calling` makes a model that calls a tool
whenever it may.
Image-output models (`image_models`) answer `modalities: ["image", "text"]` with
`message.images` as OpenRouter does, one image per answer (no `n`); image-only models
(`image_only_models`) answer `modalities: ["image"]` and refuse text with OpenRouter's 404;
`image_config.aspect_ratio` takes only OpenRouter's documented ratios, and GET /v1/models
lists each model's `architecture.output_modalities`, filtered by `?output_modalities=` as
OpenRouter's is (`fake_provider_images.py`). Answers can be scripted per
call (`enqueue`): text, a separate reasoning field in the deltas (`reasoning` as OpenRouter
sends it, `reasoning_content` as DeepSeek and vLLM do) and the finish reason
(`content_filter`).
A key outside `valid_keys` gets the 401 a real vendor sends, including the masked key echo
that real error bodies carry. Every request is recorded (with the client's port, so tests
can see a connection reused), and faults can be injected: HTTP errors for the next N
requests, a delay between chunks, a connection dropped mid-stream, an error event mid-stream
(OpenRouter's shape: HTTP 200, then a chunk with `error` and `finish_reason: "error"`, and
the stream ends). `keepalive_comments` starts each stream with OpenRouter's
`: OPENROUTER PROCESSING` comment lines; `stream_error_code` is the `code` of that error event
(OpenRouter puts the upstream's HTTP status there). `cut_after_chunks` ends the body cleanly
mid-answer, with no `finish_reason` and no `[DONE]` (a proxy that gave up); `omit_done`
finishes answers without `[DONE]`, as some providers do. Models in `gemini_tool_models` stream
tool calls as Gemini's OpenAI-compatible endpoint does and refuse a next round that does not
echo their thought signatures (see `fake_tools.py`).
A fault's delay goes in `Retry-After` as whole seconds (all HTTP allows) and exactly in
`retry-after-ms`, as OpenAI sends it; a 429's body is OpenAI's rate-limit error (type
`requests`, code `rate_limit_exceeded`, "Please try again in …"). A fault may be kept for one
endpoint (`path`), so other calls (a background fact extraction) do not take it.
`chunk_delay` paces thinking too, and `stall_next` keeps a stream silent before its first
delta (a model thinking unseen).
Vendor refusals as documented: `flag_next` answers OpenRouter's moderation 403 ("Your chosen
model requires moderation and your input was flagged", numeric `code`, `metadata.reasons` and
`flagged_input`); `context_limit` refuses a prompt (plus `max_tokens`) over the window with
OpenAI's 400 `context_length_exceeded` or OpenRouter's "This endpoint's maximum context
length is …" (`context_error_shape`), counting `max_completion_tokens` as `max_tokens` (the
reasoning models' name for it); `ignore_stream` answers `stream: true` with one
`chat.completion` JSON body, as some OpenAI-compatible proxies and local servers do.
A key in `spent_keys` has no credit left, refused as the vendor `quota_shape` names refuses it:
"openrouter" (the default) 402 "Insufficient credits" on every call that needs the key;
"openai" 429 `insufficient_quota` (type `insufficient_quota`, "You exceeded your current quota,
please check your plan and billing details", help.openai.com article 6891831) on every billed
call, the free model list answering as ever. `fail_next(429, code="insufficient_quota")` sends
that body once. Transcriptions are refused as OpenAI refuses them (`fake_speech.py`): a request
over 25 MiB (413) or a file name without an audio extension (400); an accepted one can be
slow (`transcription_delay`) or lost with its connection (`drop_transcriptions`), and an upload
reset midway (`reset_transcription_uploads`). Bodies up to
`MAX_BODY_BYTES` are read (aiohttp's own default, 1 MiB, would answer a plain-text 413 no
vendor sends).
This module serves, admits and records; chat completions are `fake_provider_chat.py`, the
other endpoints `fake_provider_endpoints.py`, the vendors' error bodies and injected faults
`fake_provider_errors.py`, the answers' text, tokens and embeddings `fake_provider_replies.py`,
the image models `fake_provider_images.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from types import TracebackType
from typing import Any

from aiohttp import BodyPartReader, web

from tzurot.testing.fake_provider_chat import chat_completion
from tzurot.testing.fake_provider_endpoints import (
    embeddings,
    images_generation,
    key_info,
    list_models,
    speech,
    transcription,
)
from tzurot.testing.fake_provider_errors import (
    INSUFFICIENT_QUOTA,
    MODERATION_MESSAGE,
    QUOTA_MESSAGE,
    Fault,
    context_length_error,
    error_body,
    moderation_error,
    quota_exceeded,
)
from tzurot.testing.fake_provider_replies import (
    ReplyFn,
    ScriptedReply,
    echo_reply,
    estimate_tokens,
)
from tzurot.testing.fake_tools import ToolCallSpec

__all__ = [
    "DEFAULT_KEY",
    "INSUFFICIENT_QUOTA",
    "MAX_BODY_BYTES",
    "MODERATION_MESSAGE",
    "QUOTA_MESSAGE",
    "FakeProvider",
    "RecordedRequest",
    "ReplyFn",
    "ScriptedReply",
    "context_length_error",
    "echo_reply",
    "estimate_tokens",
    "moderation_error",
    "quota_exceeded",
]

DEFAULT_KEY = "sk-test-valid"
MAX_BODY_BYTES = 64 * 1024 * 1024
"""The largest request body the fake reads: above every limit a vendor rule here enforces (a
transcription's 25 MiB), so the vendor's own refusal is what a test sees."""


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    api_key: str | None
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    """Lowercase names; never the Authorization header (its key is `api_key`)."""
    client_port: int = 0
    """The client's side of the TCP connection: equal ports, one connection reused."""


class FakeProvider:
    """Run with `async with FakeProvider(valid_keys={"sk-good"}) as fake:`; see `base_url`.

    `reply` is the answer text, or a function of the request body; `chunk_delay` spaces the
    SSE chunks; `drop_after_chunks` closes the connection mid-stream after that many chunks.
    """

    hold_key_checks: asyncio.Event | None
    """While an unset Event, a key's check (GET /models, GET /key) waits, `key_checking` set
    first: a provider slow to say whether a new key works (the test sets it when done)."""

    def __init__(  # noqa: PLR0915  # one documented attribute per vendor behaviour
        self,
        valid_keys: Iterable[str] = (DEFAULT_KEY,),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: str | ReplyFn = echo_reply,
        chunk_delay: float = 0.0,
        require_key: bool = True,
        models: Iterable[str] = ("fake/echo", "fake/large"),
        any_model: bool = False,
        sock: socket.socket | None = None,
    ) -> None:
        """`sock`: a listening socket to serve on (its address, not `host`/`port`)."""
        self.valid_keys = set(valid_keys)
        self.host, self.port = host, port
        self._sock = sock
        if sock is not None:
            self.host, self.port = sock.getsockname()[:2]
        self.reply, self.chunk_delay, self.require_key = reply, chunk_delay, require_key
        self.models: list[str] = list(models)
        self.any_model = any_model
        self.public_models = False
        """Serve /v1/models without a key, as OpenRouter does (keys are proven by /v1/key)."""
        self.credit_remaining: float | None = None
        """What GET /v1/key reports as `limit_remaining` (None: no limit)."""
        self.embedding_dimensions = 384
        self.requests: list[RecordedRequest] = []
        self.drop_after_chunks: int | None = None
        self.error_after_chunks: int | None = None
        """Streams this many answer chunks, then OpenRouter's mid-stream error event."""
        self.stream_error_code: int | str = 502
        """The `code` of that error event (e.g. 402, 429, "content_filter")."""
        self.cut_after_chunks: int | None = None
        """Streams this many answer chunks, then ends the body cleanly: no finish, no [DONE]."""
        self.omit_done = False
        """Finish streams without `data: [DONE]` (the finish_reason still comes)."""
        self.ignore_stream = False
        """Answer `stream: true` with one `chat.completion` JSON body, as some
        OpenAI-compatible proxies and local servers do."""
        self.context_limit: int | None = None
        """The models' window in (estimated) tokens: a longer prompt plus `max_tokens` is
        refused with a 400 in `context_error_shape` ("openai" or "openrouter")."""
        self.context_error_shape = "openai"
        self.gemini_tool_models: set[str] = set()
        """Models whose tool calls stream as Gemini's (no index, thought signatures), and
        which refuse a current turn that does not echo those signatures (Gemini 3)."""
        self._thought_signatures: set[str] = set()
        self.keepalive_comments = 0
        """SSE comment lines (`: OPENROUTER PROCESSING`) sent before the first chunk."""
        self.transcript = "hello from a voice message"
        self.sends_usage = True
        """False: a server that streams no usage chunk though `stream_options.include_usage`
        asks for one (some OpenAI-compatible servers do)."""
        self.transcript_seconds = 3.0
        """What a `whisper*` model bills (usage `duration`); other models bill tokens."""
        self.transcription_delay = 0.0
        """Seconds a transcription works on the file it read before answering (a long
        recording); a client that goes away ends the wait."""
        self.drop_transcriptions = 0
        """The next this many transcriptions read the file, then close the connection with
        no answer (a proxy dying while the provider works)."""
        self.reset_transcription_uploads = 0
        """The next this many transcriptions read only the start of their upload, then reset
        the connection (a proxy refusing it midway): the provider never had the file, which
        the client sees (NotReceived) when it is larger than the connection's buffers."""
        self.script: list[ScriptedReply] = []
        """Answers for the next chat calls, first in first out; `reply` when it is empty."""
        self.no_tool_models: set[str] = set()
        """Models that refuse any request carrying `tools` (OpenRouter's 404)."""
        self.no_tool_hosts: set[str] = set()
        """OpenRouter upstreams without tool use: `tools` with a `provider.only` naming only
        these gets the same 404, whatever the model."""
        self.keep_calling: ToolCallSpec | None = None
        """A model that makes this call whenever tools are offered and allowed."""
        self.image_bytes = 0
        """When set, every image drawn is a PNG this many bytes long."""
        self.image_models: set[str] = set()
        """Models that can answer `modalities: ["image", "text"]` and /images/generations."""
        self.image_only_models: set[str] = set()
        """Models whose only output is images: they answer `modalities: ["image"]` and refuse
        any request asking for text (`fake_provider_images.py`)."""
        self._faults: list[Fault] = []
        self._stalls: list[float] = []
        # While an unset Event, chat streams wait after their first (role) chunk: a model
        # thinking for as long as a test needs (the test sets it when done).
        self.hold: asyncio.Event | None = None
        self.hold_key_checks, self.key_checking = None, asyncio.Event()
        self.spent_keys: set[str] = set()
        """Valid keys with no credit left: refused as `quota_shape` says."""
        self.quota_shape = "openrouter"
        """Whose refusal a spent key gets: "openrouter" (402, every call) or "openai" (429
        `insufficient_quota`, every billed call: the model list still answers)."""
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        for method, path, handler in (
            ("POST", "/v1/chat/completions", chat_completion),
            ("GET", "/v1/models", list_models),
            ("GET", "/v1/key", key_info),
            ("POST", "/v1/embeddings", embeddings),
            ("POST", "/v1/audio/transcriptions", transcription),
            ("POST", "/v1/images/generations", images_generation),
            ("POST", "/v1/audio/speech", speech),
        ):
            app.router.add_route(method, path, partial(handler, self))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site: web.BaseSite = (
            web.TCPSite(self._runner, self.host, self.port)
            if self._sock is None
            else web.SockSite(self._runner, self._sock)
        )
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeProvider:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- fault injection and inspection ------------------------------------------------------

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        message: str | None = None,
        param: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next `times` requests (to `path` only, e.g. "/v1/audio/transcriptions", when
        given) answer HTTP `status` with an OpenAI-style error body (its `code` is
        `http_<status>` unless given, e.g. "content_filter", and OpenAI's
        `rate_limit_exceeded` for a 429; its message "injected fault <status>" unless given,
        e.g. a vendor's exact wording; `param` the request field it blames)."""
        self._faults.append(Fault(status, times, retry_after, code, message, param, path))

    def flag_next(
        self,
        reasons: Iterable[str] = ("harassment",),
        flagged_input: str = "the flagged words",
        times: int = 1,
    ) -> None:
        """The next `times` chat calls answer OpenRouter's moderation 403 (the model requires
        moderation and the input was flagged; `moderation_error`)."""
        body = moderation_error(reasons, flagged_input, "fake/echo")
        self._faults.append(Fault(403, times, path="/v1/chat/completions", body=body))

    def stall_next(self, seconds: float, times: int = 1) -> None:
        """The next `times` chat streams send their headers and first (role) chunk, then
        nothing for `seconds`: a model thinking without streaming its thoughts (a client
        that goes away ends the wait)."""
        self._stalls.extend([seconds] * times)

    async def _key_check_held(self) -> None:
        self.key_checking.set()
        if self.hold_key_checks is not None:
            await self.hold_key_checks.wait()

    async def _stall(self, request: web.Request) -> None:
        if self.hold is not None:
            await self.hold.wait()
        if not self._stalls:
            return
        until = time.monotonic() + self._stalls.pop(0)
        while time.monotonic() < until:
            if request.transport is None or request.transport.is_closing():
                return
            await asyncio.sleep(min(0.02, max(until - time.monotonic(), 0.0)))

    def enqueue(
        self,
        text: str,
        *,
        reasoning: str = "",
        reasoning_field: str = "reasoning",
        finish_reason: str = "stop",
    ) -> None:
        """The next chat call (after those already queued) answers exactly this."""
        self.script.append(ScriptedReply(text, reasoning, reasoning_field, finish_reason))

    def enqueue_tool_calls(self, *calls: ToolCallSpec, text: str = "") -> None:
        """The next chat call answers with these tool calls (and optional text before)."""
        self.script.append(ScriptedReply(text, finish_reason="tool_calls", tool_calls=calls))

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def chat_image_requests(self) -> list[RecordedRequest]:
        """Chat calls that asked for images (`modalities` naming "image"), as received."""
        return [r for r in self.chat_requests() if "image" in (r.body.get("modalities") or [])]

    def transcription_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/audio/transcriptions"]

    def speech_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/audio/speech"]

    def image_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/images/generations"]

    # -- admission (every endpoint: `fake_provider_chat.py`, `fake_provider_endpoints.py`) -----

    async def _admit(
        self, request: web.Request, *, public: bool = False, billed: bool = True
    ) -> tuple[dict[str, Any], web.Response | None]:
        header = request.headers.get("Authorization", "")
        api_key = header.removeprefix("Bearer ").strip() or None
        body: dict[str, Any] = {}
        if request.content_type.startswith("multipart/"):
            body = await _read_multipart(request)
        elif request.can_read_body:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return body, error_body(
                    400, "invalid JSON body", "invalid_json", "invalid_request_error"
                )
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.requests.append(
            RecordedRequest(
                request.method, request.path, api_key, body, headers, peer[1] if peer else 0
            )
        )
        if self.require_key and not public and api_key not in self.valid_keys:
            shown = f"{api_key[:5]}***" if api_key else "none"
            return body, error_body(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at https://example.invalid.",
                "invalid_api_key",
                "invalid_request_error",
            )
        spent = api_key in self.spent_keys and not public
        if spent and (billed or self.quota_shape != "openai"):
            return body, quota_exceeded(self.quota_shape)
        fault = next((f for f in self._faults if f.path in (None, request.path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.remove(fault)
            return body, fault.response()
        return body, None


async def _read_multipart(request: web.Request) -> dict[str, Any]:
    """Form fields as strings; the file as its name, content type, size and SHA-256; the
    parts' bytes as `request_bytes` (what a chunked body, without Content-Length, held)."""
    fields: dict[str, Any] = {}
    read = 0
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        data = await part.read()
        read += len(data)
        fields["request_bytes"] = read
        if part.filename is not None:
            fields["file_name"] = part.filename
            fields["file_content_type"] = part.headers.get("Content-Type", "")
            fields["file_size"] = len(data)
            fields["file_sha256"] = hashlib.sha256(data).hexdigest()
        else:
            fields[part.name] = data.decode()
    return fields
