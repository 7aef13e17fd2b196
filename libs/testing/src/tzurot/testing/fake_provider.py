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
`message.images` as OpenRouter does, one image per answer (no `n`). Answers can be scripted per
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
over 25 MiB (413) or a file name without an audio extension (400). Bodies up to
`MAX_BODY_BYTES` are read (aiohttp's own default, 1 MiB, would answer a plain-text 413 no
vendor sends).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import BodyPartReader, web

from tzurot.testing.fake_model_params import check_model_parameters
from tzurot.testing.fake_speech import (
    TRANSCRIPTION_MAX_REQUEST_BYTES,
    check_speech_request,
    check_transcription_file,
    speech_response,
    transcription_too_large,
)
from tzurot.testing.fake_tools import (
    ToolCallSpec,
    check_thought_signatures,
    check_tools,
    gemini_tool_call_chunks,
    image_reply,
    images_generations,
    new_thought_signature,
    tool_call_chunks,
    tool_call_message,
    tools_allowed,
)

ReplyFn = Callable[[dict[str, Any]], "str | ScriptedReply"]

DEFAULT_KEY = "sk-test-valid"
MAX_BODY_BYTES = 64 * 1024 * 1024
"""The largest request body the fake reads: above every limit a vendor rule here enforces (a
transcription's 25 MiB), so the vendor's own refusal is what a test sees."""
INSUFFICIENT_QUOTA = "insufficient_quota"
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, read the docs: "
    "https://platform.openai.com/docs/guides/error-codes/api-errors."
)
"""OpenAI's words for a key whose account has no credit or budget left (HTTP 429)."""


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


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer: its text, a reasoning field streamed before it, the finish reason."""

    text: str
    reasoning: str = ""
    reasoning_field: str = "reasoning"
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCallSpec, ...] = ()
    """Calls the model makes instead of answering (finish_reason becomes "tool_calls")."""


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None
    path: str | None = None
    body: dict[str, Any] | None = None
    """The whole error body, as a vendor sends it (OpenRouter's moderation error)."""

    def response(self) -> web.Response:
        """The error as the vendor sends it; a 429 as OpenAI does, unless told otherwise."""
        if self.body is not None:
            return web.json_response(self.body, status=self.status)
        limited = self.status == 429
        if limited and self.code == INSUFFICIENT_QUOTA:
            response = quota_exceeded("openai")
        else:
            default = (
                _rate_limited(self.retry_after) if limited else f"injected fault {self.status}"
            )
            response = _error_body(
                self.status,
                self.message or default,
                self.code or ("rate_limit_exceeded" if limited else f"http_{self.status}"),
                "requests" if limited else "server_error",
                self.param,
            )
        if self.retry_after is not None:  # HTTP's Retry-After is whole seconds; the exact
            # delay goes in retry-after-ms, as OpenAI and Azure send it
            response.headers["Retry-After"] = str(math.ceil(self.retry_after))
            response.headers["retry-after-ms"] = str(round(self.retry_after * 1000))
        return response


def _rate_limited(retry_after: float | None) -> str:
    """OpenAI's wording of a 429 (its numbers made up)."""
    wait = "a moment" if retry_after is None else f"{retry_after:g}s"
    return (
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
        f"Please try again in {wait}. Visit https://example.invalid/rate-limits to learn more."
    )


def quota_exceeded(shape: str) -> web.Response:
    """A key with no credit left, as `shape`'s vendor refuses it: OpenAI's 429
    `insufficient_quota`, or OpenRouter's 402."""
    if shape == "openai":
        return _error_body(429, QUOTA_MESSAGE, INSUFFICIENT_QUOTA, INSUFFICIENT_QUOTA)
    return _error_body(
        402,
        "Insufficient credits. Add more using https://example.invalid/credits",
        "402",
        "invalid_request_error",
    )


MODERATION_MESSAGE = "Your chosen model requires moderation and your input was flagged"
"""OpenRouter's documented meaning of its 403 (openrouter.ai/docs/errors)."""


def moderation_error(reasons: Iterable[str], flagged_input: str, model: str) -> dict[str, Any]:
    """OpenRouter's 403 body when a moderated model's input was flagged: `code` the status
    as a number, `metadata` its ModerationErrorMetadata (`reasons`, `flagged_input` of at
    most 100 characters, cut in the middle with "..."), with `provider_name` and
    `model_slug`."""
    if len(flagged_input) > 100:
        flagged_input = flagged_input[:48] + "..." + flagged_input[-49:]
    metadata = {
        "reasons": list(reasons),
        "flagged_input": flagged_input,
        "provider_name": "fake",
        "model_slug": model,
    }
    return {"error": {"code": 403, "message": MODERATION_MESSAGE, "metadata": metadata}}


def context_length_error(shape: str, limit: int, asked: int) -> web.Response:
    """A prompt longer than the model's window: OpenAI's 400 (`context_length_exceeded`,
    type `invalid_request_error`, param `messages`) or OpenRouter's (numeric `code` 400,
    "This endpoint's maximum context length is …")."""
    if shape == "openrouter":
        message = (
            f"This endpoint's maximum context length is {limit} tokens. However, you "
            f"requested about {asked} tokens. Please reduce the length of either one, or "
            'use the "middle-out" transform to compress your prompt automatically.'
        )
        return web.json_response({"error": {"code": 400, "message": message}}, status=400)
    message = (
        f"This model's maximum context length is {limit} tokens. However, your messages "
        f"resulted in {asked} tokens. Please reduce the length of the messages."
    )
    return _error_body(400, message, "context_length_exceeded", "invalid_request_error", "messages")


def echo_reply(body: dict[str, Any]) -> str:
    """The default answer: repeats the last user message."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return f"You said: {_text(message.get('content'))}"
    return "You said nothing."


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def _words(text: str) -> list[str]:
    """Splits keeping the spaces, so the chunks join back to the exact text."""
    chunks: list[str] = []
    for word in text.split(" "):
        chunks.append(word if not chunks else " " + word)
    return [c for c in chunks if c]


def _error_body(
    status: int, message: str, code: str, kind: str, param: str | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}}, status=status
    )


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
        self.script: list[ScriptedReply] = []
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
        """Answers for the next chat calls, first in first out; `reply` when it is empty."""
        self._faults: list[_Fault] = []
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
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/key", self._key)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/audio/speech", self._speech)
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
        self._faults.append(_Fault(status, times, retry_after, code, message, param, path))

    def flag_next(
        self,
        reasons: Iterable[str] = ("harassment",),
        flagged_input: str = "the flagged words",
        times: int = 1,
    ) -> None:
        """The next `times` chat calls answer OpenRouter's moderation 403 (the model requires
        moderation and the input was flagged; `moderation_error`)."""
        body = moderation_error(reasons, flagged_input, "fake/echo")
        self._faults.append(_Fault(403, times, path="/v1/chat/completions", body=body))

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

    def transcription_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/audio/transcriptions"]

    # -- handlers --------------------------------------------------------------------------

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
                return body, _error_body(
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
            return body, _error_body(
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

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, refused = await self._admit(request, public=self.public_models, billed=False)
        if refused:
            return refused
        await self._key_check_held()
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _key(self, request: web.Request) -> web.StreamResponse:
        """OpenRouter's GET /key: the key's own limits; 401 for a key it does not know."""
        _, refused = await self._admit(request, billed=False)
        if refused:
            return refused
        await self._key_check_held()
        limit = None if self.credit_remaining is None else max(self.credit_remaining, 0) + 1
        return web.json_response(
            {
                "data": {
                    "label": "fake key",
                    "usage": 0,
                    "limit": limit,
                    "limit_remaining": self.credit_remaining,
                    "is_free_tier": False,
                }
            }
        )

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._admit(request)
        if refused:
            return refused
        inputs = body.get("input", [])
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        dims = int(body.get("dimensions") or self.embedding_dimensions)
        data = [
            {"object": "embedding", "index": i, "embedding": _embed(text, dims)}
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

    async def _chat(self, request: web.Request) -> web.StreamResponse:  # noqa: PLR0911  # one answer per vendor rule
        body, refused = await self._admit(request)
        if refused:
            return refused
        model = str(body.get("model", ""))
        if model not in self.models and not self.any_model:
            return _error_body(
                404,
                f"The model `{model}` does not exist",
                "model_not_found",
                "invalid_request_error",
            )
        tool_error = check_tools(body)
        if tool_error is not None:
            return _error_body(400, tool_error, "invalid_request_error", "invalid_request_error")
        check_model_parameters(body, model)  # raises the vendor's 400
        if model in self.gemini_tool_models:
            unsigned = check_thought_signatures(
                body.get("messages") or [], self._thought_signatures
            )
            if unsigned is not None:  # Gemini's error body is a list of one error
                error = {"code": 400, "message": unsigned, "status": "INVALID_ARGUMENT"}
                return web.json_response([{"error": error}], status=400)
        routing = body.get("provider")
        only = routing.get("only") if isinstance(routing, dict) else None
        routed_away = (
            isinstance(only, list)
            and bool(only)
            and all(isinstance(host, str) and host in self.no_tool_hosts for host in only)
        )
        if body.get("tools") and (model in self.no_tool_models or routed_away):
            # OpenRouter's answer when no endpoint of the model supports tool use.
            return _error_body(
                404,
                "No endpoints found that support tool use. To learn more about provider "
                "routing, visit: https://openrouter.ai/docs/provider-routing",
                "404",
                "invalid_request_error",
            )
        if "image" in (body.get("modalities") or []):
            if model not in self.image_models:
                return _error_body(
                    404,
                    "No endpoints found that support the requested output modalities: image, text",
                    "404",
                    "invalid_request_error",
                )
            return web.json_response(image_reply(body, model, image_bytes=self.image_bytes))
        prompt_tokens = sum(
            estimate_tokens(_text(m.get("content"))) for m in body.get("messages", [])
        )
        output = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        asked = prompt_tokens + int(output)
        if self.context_limit is not None and asked > self.context_limit:
            return context_length_error(self.context_error_shape, self.context_limit, asked)
        scripted = self._next_reply(body)
        text = scripted.text
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": estimate_tokens(text),
            "total_tokens": prompt_tokens + estimate_tokens(text),
        }
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "created": int(time.time()),
            "model": model,
        }
        if not body.get("stream") or self.ignore_stream:
            if scripted.tool_calls:
                return web.json_response(
                    {
                        **head,
                        "object": "chat.completion",
                        "choices": [
                            {
                                "index": 0,
                                "message": tool_call_message(
                                    text, scripted.tool_calls, self._signature_for(model)
                                ),
                                "finish_reason": "tool_calls",
                            }
                        ],
                        "usage": usage,
                    }
                )
            return web.json_response(
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": text,
                                **(
                                    {scripted.reasoning_field: scripted.reasoning}
                                    if scripted.reasoning
                                    else {}
                                ),
                            },
                            "finish_reason": scripted.finish_reason,
                        }
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        streams_usage = include_usage and self.sends_usage
        return await self._stream(request, head, scripted, usage if streams_usage else None)

    def _next_reply(self, body: dict[str, Any]) -> ScriptedReply:
        """The scripted answer, `keep_calling`'s call, or `reply`; tool calls only where the
        request allows them (tool_choice "none" gets text, as from the vendor)."""
        allowed = tools_allowed(body)
        if self.keep_calling is not None and allowed:
            return ScriptedReply("", finish_reason="tool_calls", tool_calls=(self.keep_calling,))
        if self.script and (allowed or not self.script[0].tool_calls):
            return self.script.pop(0)
        produced = self.reply(body) if callable(self.reply) else self.reply
        if isinstance(produced, ScriptedReply):
            if produced.tool_calls and not allowed:
                return ScriptedReply(produced.text or "I cannot use tools now.")
            return produced
        return ScriptedReply(produced)

    async def _images(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._admit(request)
        if refused:
            return refused
        status, answer = images_generations(body, self.image_models, image_bytes=self.image_bytes)
        if status != 200:
            return _error_body(status, answer["message"], answer["code"], "invalid_request_error")
        return web.json_response(answer)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._admit(request)
        if refused:
            return refused
        error = check_speech_request(body)
        if error is not None:
            return _error_body(400, error, "invalid_value", "invalid_request_error")
        return await speech_response(request, body)

    def speech_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/audio/speech"]

    def image_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/images/generations"]

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._admit(request)
        if refused:
            return refused
        size = request.content_length or int(body.get("request_bytes") or 0)
        if size > TRANSCRIPTION_MAX_REQUEST_BYTES:
            return transcription_too_large(size)
        if not body.get("file_size"):
            return _error_body(400, "no audio file", "invalid_file", "invalid_request_error")
        bad_name = check_transcription_file(str(body.get("file_name") or ""))
        if bad_name is not None:
            return bad_name
        if body.get("response_format") in ("text",):
            return web.Response(text=self.transcript)
        # OpenAI's usage: seconds of audio for whisper-1, tokens for gpt-4o-transcribe.
        usage: dict[str, Any] = {"type": "duration", "seconds": self.transcript_seconds}
        if not str(body.get("model", "")).startswith("whisper"):
            output = estimate_tokens(self.transcript)
            audio = int(body["file_size"]) // 100 + 1
            usage = {
                "type": "tokens",
                "input_tokens": audio,
                "output_tokens": output,
                "total_tokens": audio + output,
            }
        return web.json_response({"text": self.transcript, "usage": usage})

    async def _stream(
        self,
        request: web.Request,
        head: dict[str, Any],
        scripted: ScriptedReply,
        usage: dict[str, int] | None,
    ) -> web.StreamResponse:
        text = scripted.text
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
            chunk = {
                **head,
                "object": "chat.completion.chunk",
                "choices": choices,
                **(extra or {}),
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        for _ in range(self.keepalive_comments):
            await response.write(b": OPENROUTER PROCESSING\n\n")
        await send(
            [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
        )
        await self._stall(request)
        for piece in _words(scripted.reasoning):
            await asyncio.sleep(self.chunk_delay)  # thinking streams at the answer's pace
            delta = {"content": None, scripted.reasoning_field: piece}
            await send([{"index": 0, "delta": delta, "finish_reason": None}])
        if scripted.tool_calls:
            for piece in _words(text):
                await send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            signature = self._signature_for(head["model"])
            deltas = (
                tool_call_chunks(scripted.tool_calls)
                if signature is None
                else gemini_tool_call_chunks(scripted.tool_calls, signature)
            )
            for delta in deltas:
                await send([{"index": 0, "delta": delta, "finish_reason": None}])
            # Gemini 3 often ends a tool-call step with "stop".
            finish = "tool_calls" if signature is None else "stop"
            await send([{"index": 0, "delta": {}, "finish_reason": finish}])
            if usage is not None:
                await send([], {"usage": usage})
            return await self._end(response)
        for n, piece in enumerate(_words(text)):
            if self.drop_after_chunks is not None and n >= self.drop_after_chunks:
                assert request.transport is not None
                request.transport.close()
                return response
            if self.cut_after_chunks is not None and n >= self.cut_after_chunks:
                await response.write_eof()  # a clean end of body, mid-answer
                return response
            if self.error_after_chunks is not None and n >= self.error_after_chunks:
                error = {
                    "code": self.stream_error_code,
                    "message": "Provider returned error: upstream disconnected",
                }
                await send(
                    [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
                    {"provider": "fake", "error": error},
                )
                await response.write_eof()
                return response
            if self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        await send([{"index": 0, "delta": {}, "finish_reason": scripted.finish_reason}])
        if usage is not None:
            await send([], {"usage": usage})
        return await self._end(response)

    def _signature_for(self, model: str) -> str | None:
        """A new thought signature (remembered as issued) for a Gemini model; else None."""
        if model not in self.gemini_tool_models:
            return None
        signature = new_thought_signature()
        self._thought_signatures.add(signature)
        return signature

    async def _end(self, response: web.StreamResponse) -> web.StreamResponse:
        if not self.omit_done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


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


def _embed(text: str, dims: int) -> list[float]:
    """A deterministic unit vector from the text's words: equal texts embed equally."""
    vector = [0.0] * dims
    for word in text.lower().split():
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % dims
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
