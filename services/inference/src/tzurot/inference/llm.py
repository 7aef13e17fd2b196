"""Streamed chat completions from an OpenAI-compatible provider, with errors classified.

One `httpx2.AsyncClient` (connection pool) serves the whole process, and one `AsyncOpenAI`
on it serves each base URL (a few, bounded). The client holds no user's key: each request
carries the caller's key in its own Authorization header, so keys never outlive a call and
never mix between users. (A client per call cost ~0.5 ms of CPU and a thread hop to learn
the platform for its headers, on every request.) The SDK's own retries are off on every
client: each method sends one request, and its callers ask again as retries.py allows,
within their time limits. A failure becomes a typed error whose message names the provider
and never repeats the provider's own text (error bodies can echo part of the key); a
connection that failed before the request was sent is `NotSent`, a timeout once it was is
`NoAnswerInTime` (both UNAVAILABLE).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import httpx2
import openai
from openai.types.audio.transcription import UsageDuration, UsageTokens
from pydantic import SecretStr

from tzurot.inference.chunks import AnswerAssembly
from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import ImageAnswer, StreamEvent, TokenUsage, Transcript
from tzurot.inference.image_modalities import (
    IMAGE_ONLY,
    ChatModalities,
    refuses_text_output,
    says_text_output_refused,
)
from tzurot.inference.providers import Provider
from tzurot.inference.retries import NoAnswerInTime, NotSent
from tzurot.inference.sse import ErrorEvent, StreamCutShort, chat_chunks
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

_PROVIDER_CODE = re.compile(r"[a-z_]{1,48}")
_CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
_KEY_REFUSAL_CODES = frozenset({"invalid_api_key", "authentication_error"})
"""A 403 body's `code` or `type` that says the key itself was refused (a 401 always is)."""
_CONTEXT_TOO_LONG_CODES = frozenset({"context_length_exceeded"})  # OpenAI
_QUOTA_CODES = frozenset({"insufficient_quota"})
"""A 429's `code` (or `type`) that says the key's account has no credit or budget left
(OpenAI: "You exceeded your current quota, please check your plan and billing details"):
a quota refusal as a 402 is, never a rate limit to wait out."""
_CONTEXT_TOO_LONG = re.compile(
    r"maximum context length"  # OpenAI, OpenRouter, vLLM, Mistral
    r"|prompt is too long"  # Anthropic
    r"|exceeds the available context size"  # llama.cpp's server
    r"|exceeds the maximum number of tokens allowed",  # Gemini
    re.IGNORECASE,
)
"""A 400's wording for a prompt longer than the model's window (only looked at, never
repeated)."""


def content_filtered(provider: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{provider} refused to answer: its content filter blocked this conversation",
        reason="CONTENT_FILTERED",
        metadata={"provider": provider},
    )


def content_flagged(provider: str) -> FailedPrecondition:
    """OpenRouter's 403: the model requires moderation and the input was flagged."""
    return FailedPrecondition(
        f"{provider} refused the request: its moderation flagged this conversation "
        "(HTTP 403); rephrase it or choose another model",
        reason="CONTENT_FILTERED",
        metadata={"provider": provider, "status": "403"},
    )


def context_too_long(provider: str, model: str, code: str) -> InvalidArgument:
    """A 400 for a prompt longer than the model's window: the config's context_window is
    larger than the model's."""
    detail = f", {code}" if code else ""
    what = f"{provider}'s model {model!r}" if model else provider
    return InvalidArgument(
        "config.context_window",
        f"the conversation is longer than {what} accepts (HTTP 400{detail}); "
        "lower context_window in this personality's LLM config",
        reason="CONTEXT_TOO_LONG",
        metadata={
            "provider": provider,
            "status": "400",
            **({"model": model} if model else {}),
            **({"provider_code": code} if code else {}),
        },
    )


class ToolsUnsupported(Exception):  # an answer, not a failure
    """The provider refused a request because it carried tools (the model cannot use them).

    `routed`: the request carried the user's own routing parameters (OpenRouter's
    `provider`, `models`, `route`), which may be what left no endpoint with tool use."""

    def __init__(self, provider: str, model: str, *, routed: bool = False) -> None:
        super().__init__(provider, model)
        self.routed = routed


_TOOL_REFUSAL = re.compile(
    r"no endpoints found that support tool use"  # OpenRouter, 404
    r"|does not support (?:tools|tool use|tool calling|function calling)"  # Ollama; DeepSeek
    r"|(?:tool|function) calling is not (?:supported|enabled)"  # Mistral, Groq
    r"|tool choice requires --enable-auto-tool-choice"  # vLLM without a tool parser
    r"|tools param requires --jinja",  # llama.cpp's server
    re.IGNORECASE,
)
_NEVER_A_TOOL_REFUSAL = frozenset({"context_length_exceeded"})
"""Codes whose message may name functions or tools without meaning the model lacks them
(OpenAI: "…1000 in the functions. Please reduce the length of the messages or functions")."""
USER_ROUTING = ("provider", "models", "route")
"""Request fields that are the user's own routing (OpenRouter): they can exclude every
endpoint with tool use, so a refusal under them says nothing about the model."""


def _refuses_tools(exc: openai.OpenAIError, call: ProviderCall) -> bool:
    """A 400/404 in a known wording (or OpenAI's `unsupported_parameter` on `tools`), for a
    request that offered tools: the model has no tool use.

    Only known refusals count: any message that merely names a tool or a function (a context
    overflow, a malformed call in the history) is an ordinary error. The provider's text is
    only looked at, never repeated.
    """
    if not ("tools" in call.body and isinstance(exc, openai.APIStatusError)):
        return False
    if exc.status_code not in (400, 404) or exc.code in _NEVER_A_TOOL_REFUSAL:
        return False
    if exc.code == "unsupported_parameter" and exc.param == "tools":  # OpenAI
        return True
    return bool(_TOOL_REFUSAL.search(str(exc.message)))


SDK_RETRIES = 0
"""The openai SDK's own retries, for every client: see retries.py for who asks again."""
KEY_CHECK_TIMEOUT_SECONDS = 15.0
MAX_CLIENTS = 32
"""SDK clients kept (one per base URL and kind); the least recently used goes first."""
NO_SHARED_KEY = "per-request"
"""The shared clients' own key, never sent: every request sets its caller's key."""


def _auth(api_key: SecretStr) -> dict[str, str]:
    """The request's own Authorization header (overrides the shared client's)."""
    return {"Authorization": f"Bearer {api_key.get_secret_value()}"}


class SdkClients:
    """One `AsyncOpenAI` per base URL and kind (a call, or a key check: within 15 s), on the
    shared pool, without a key and without the SDK's retries; at most `limit`, least
    recently used first out."""

    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        timeout: float,
        limit: int = MAX_CLIENTS,
    ) -> None:
        self._http = http
        self._timeout = timeout
        self._limit = limit
        self._clients: OrderedDict[tuple[str, bool], openai.AsyncOpenAI] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def get(self, base_url: str, *, quick: bool = False) -> openai.AsyncOpenAI:
        slot = (base_url, quick)
        client = self._clients.get(slot)
        if client is not None:
            self._clients.move_to_end(slot)
            return client
        client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=NO_SHARED_KEY,
            max_retries=SDK_RETRIES,  # on the client: `.create()` can only change it by a copy
            timeout=min(self._timeout, KEY_CHECK_TIMEOUT_SECONDS) if quick else self._timeout,
            http_client=self._http,
        )
        self._clients[slot] = client
        if len(self._clients) > self._limit:  # the pool is shared: nothing to close
            self._clients.popitem(last=False)
        return client


class LlmClient:
    """Calls providers over one shared connection pool; close it when the process stops."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        http_client: openai.DefaultAsyncHttpxClient | None = None,
    ) -> None:
        # Redirects are not followed (the SDK's default client does): a provider's API does
        # not redirect its calls, and a redirect would carry the user's extra headers to
        # another host and let its answer (a model list) pass for the key's (review 158 L5).
        self._http = http_client or openai.DefaultAsyncHttpxClient(follow_redirects=False)
        self._timeout = timeout_seconds
        self._clients = SdkClients(self._http, timeout=timeout_seconds)
        self._image_modalities = ChatModalities()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _client(self, provider: Provider, *, quick: bool = False) -> openai.AsyncOpenAI:
        return self._clients.get(provider.base_url, quick=quick)

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yields the answer's text (and reasoning) deltas in order, then one Completion.

        `request_timeout` (seconds, at most the client's own) bounds each step of this
        request. One request: no wait (a 429's Retry-After) hides inside the caller's time
        limits."""
        client = self._client(provider)
        assembly = AnswerAssembly()
        options: openai.RequestOptions = {"headers": {**call.headers, **_auth(api_key)}}
        if request_timeout is not None:
            options["timeout"] = max(min(request_timeout, self._timeout), 0.001)
        try:
            # client.post, not chat.completions.create: create first runs the SDK's typed
            # transform over every message (~1 ms each), a no-op for the plain messages
            # dialects.py builds. The raw response, not AsyncStream[ChatCompletionChunk],
            # which builds pydantic models for every chunk (see sse.py). Same request, same
            # errors.
            response = await client.post(
                "/chat/completions",
                cast_to=httpx2.Response,
                body={
                    **call.body,
                    "model": model,
                    "messages": call.messages,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
                options=options,
                stream=True,
            )
            chunks = chat_chunks(response)
            async with aclosing(chunks):
                async for chunk in chunks:
                    for event in assembly.take(chunk):
                        yield event
        except openai.OpenAIError as exc:
            if _refuses_tools(exc, call):
                routed = any(name in call.body for name in USER_ROUTING)
                raise ToolsUnsupported(provider.name, model, routed=routed) from None
            raise provider_error(exc, provider.name, model=model) from None
        yield assembly.completion(call.messages)

    async def chat_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str | None,
    ) -> ImageAnswer:
        """Image URLs (usually data URLs) from an image-output model through chat
        completions (OpenRouter's image generation, openrouter.ai/docs/guides/overview/
        multimodal/image-generation), `image_config.aspect_ratio` when one is given, with the
        tokens the answer says it billed (the image model's own bill, reported under its name).
        `modalities` as the provider's model list says the model outputs (`["image"]` for an
        image-only model, which refuses `["image", "text"]`; read once an hour and once at a
        time per provider, `image_modalities.py`), as `_b64_format` asks each DALL-E model its
        own way."""
        modalities = await self._image_modalities.for_model(
            provider.name,
            provider.base_url,
            model,
            lambda: self._listed_image_outputs(provider, api_key),
        )
        client = self._client(provider)
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "modalities": list(modalities),
            "stream": False,
        }
        if aspect_ratio is not None:
            body["image_config"] = {"aspect_ratio": aspect_ratio}
        try:
            try:
                answer = await client.post(
                    "/chat/completions",
                    cast_to=object,
                    body=body,
                    options={"headers": _auth(api_key)},
                )
            except openai.NotFoundError as exc:
                # An image-only model asked for text too (its list unread): refused before
                # drawing, nothing billed; asked once more for the image alone. Kept for every
                # user only when the refusal was of the text and the image alone was drawn.
                if modalities == IMAGE_ONLY or not refuses_text_output(str(exc)):
                    raise
                answer = await client.post(
                    "/chat/completions",
                    cast_to=object,
                    body={**body, "modalities": list(IMAGE_ONLY)},
                    options={"headers": _auth(api_key)},
                )
                if says_text_output_refused(exc.body):
                    self._image_modalities.remember(
                        provider.name, provider.base_url, model, IMAGE_ONLY
                    )
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name, model=model) from None
        return ImageAnswer(tuple(_image_urls(answer)), _answer_usage(answer))

    async def _listed_image_outputs(
        self, provider: Provider, api_key: SecretStr
    ) -> dict[str, frozenset[str]] | None:
        """Each listed model's `architecture.output_modalities` from the provider's image model
        list (OpenRouter's `GET /models?output_modalities=image`, openrouter.ai/docs/models),
        by model id; None when the list could not be read (within 15 s, or not JSON: the drawing
        goes ahead without it)."""
        client = self._client(provider, quick=True)
        try:
            answer = await client.get(
                "/models",
                cast_to=object,
                options={"headers": _auth(api_key), "params": {"output_modalities": "image"}},
            )
        except (openai.OpenAIError, ValueError):  # ValueError: a body that is not JSON
            return None
        return _listed_outputs(answer)

    async def generate_images(  # the endpoint's own parameters
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        count: int,
        size: str,
    ) -> ImageAnswer:
        """Base64 images (or URLs) from an OpenAI-compatible `/images/generations`, with the
        tokens its `usage` says were billed (gpt-image-1; zero when it says nothing). `count`
        and `size` must be ones the model takes (the caller keeps `image_model_rules`: dall-e-3
        draws one image per request, each model has its own sizes); OpenAI refuses others with
        a 400. DALL-E answers with a URL unless asked for `b64_json` (`_b64_format`); the GPT
        image models always answer in base64 and refuse the parameter (400 "Unknown parameter:
        'response_format'.", code `unknown_parameter`)."""
        client = self._client(provider)
        try:
            result = await client.images.generate(
                model=model,
                prompt=prompt,
                n=count,
                size=size,
                extra_headers=_auth(api_key),
                **_b64_format(model),
            )
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name, model=model) from None
        images: list[str] = []
        for image in result.data or []:
            if image.b64_json:
                images.append("data:image/png;base64," + image.b64_json)
            elif image.url:
                images.append(image.url)
        usage = result.usage  # the SDK does not validate: a field may be missing
        return ImageAnswer(
            tuple(images),
            TokenUsage(
                _whole(getattr(usage, "input_tokens", 0)),
                _whole(getattr(usage, "output_tokens", 0)),
            ),
        )

    async def transcribe(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        audio: bytes,
        filename: str,
        content_type: str,
    ) -> Transcript:
        """The text of an audio file through `/audio/transcriptions` (Whisper), with the
        usage the provider reports: tokens (gpt-4o-transcribe) or seconds (whisper-1)."""
        client = self._client(provider)
        try:
            result = await client.audio.transcriptions.create(
                model=model, file=(filename, audio, content_type), extra_headers=_auth(api_key)
            )
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name, model=model) from None
        usage = result.usage  # None from providers that say nothing of it
        if isinstance(usage, UsageTokens):
            return Transcript(result.text, TokenUsage(usage.input_tokens, usage.output_tokens))
        if isinstance(usage, UsageDuration):
            return Transcript(result.text, audio_seconds=usage.seconds)
        return Transcript(result.text)

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        """How many models the key can see: a cheap call that proves the key works (within
        15 s: on a dead network the user hears so soon)."""
        client = self._client(provider, quick=True)
        auth = _auth(api_key)
        try:
            if provider.key_check_path is not None:
                await self._check_key_endpoint(client, provider, auth)
            return len([model async for model in client.models.list(extra_headers=auth)])
        except openai.NotFoundError:
            raise FailedPrecondition(
                f"cannot check the key: {provider.name} does not list models (HTTP 404)",
                reason="KEY_CHECK_UNSUPPORTED",
                metadata={"provider": provider.name},
            ) from None
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name) from None

    @staticmethod
    async def _check_key_endpoint(
        client: openai.AsyncOpenAI, provider: Provider, auth: dict[str, str]
    ) -> None:
        """The provider's own key endpoint: 401 for a bad key; no credit left is quota."""
        assert provider.key_check_path is not None
        answer = await client.get(
            provider.key_check_path, cast_to=object, options={"headers": auth}
        )
        data = answer.get("data") if isinstance(answer, dict) else None
        remaining = data.get("limit_remaining") if isinstance(data, dict) else None
        if isinstance(remaining, int | float) and remaining <= 0:
            raise ResourceExhausted(
                f"the {provider.name} key has no credit left; add credit or raise its limit",
                reason="PROVIDER_QUOTA_EXCEEDED",
                metadata={"provider": provider.name},
            )


def _whole(value: object) -> int:
    """A count the provider reported, or 0 when it is not a non-negative number."""
    return int(value) if isinstance(value, int | float) and value >= 0 else 0


def _answer_usage(answer: object) -> TokenUsage:
    """The `usage` of a non-streamed chat completion (zero when it has none)."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if not isinstance(usage, dict):
        return TokenUsage(0, 0)
    return TokenUsage(_whole(usage.get("prompt_tokens")), _whole(usage.get("completion_tokens")))


def _listed_outputs(answer: object) -> dict[str, frozenset[str]]:
    """`architecture.output_modalities` of each model in a model list, by id (the first entry
    of an id that gives them)."""
    listed = answer.get("data") if isinstance(answer, dict) else None
    found: dict[str, frozenset[str]] = {}
    for entry in listed if isinstance(listed, list) else []:
        model = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(model, str) or model in found:
            continue
        architecture = entry.get("architecture")
        outputs = architecture.get("output_modalities") if isinstance(architecture, dict) else None
        if isinstance(outputs, list):
            found[model] = frozenset(o for o in outputs if isinstance(o, str))
    return found


def _image_urls(answer: object) -> list[str]:
    """`choices[0].message.images[].image_url.url` of an OpenRouter image answer."""
    if not isinstance(answer, dict):
        return []
    urls: list[str] = []
    for choice in (answer.get("choices") or [])[:1]:
        message = choice.get("message") if isinstance(choice, dict) else None
        for image in (message or {}).get("images") or []:
            url = (image.get("image_url") or {}).get("url") if isinstance(image, dict) else None
            if isinstance(url, str) and url:
                urls.append(url)
    return urls


def invalid_api_key(provider: str, status: int) -> FailedPrecondition:
    # S608: "update … set" reads as SQL to the linter; this is a message for the user.
    message = (
        f"{provider} rejected the API key (HTTP {status}); update it with /wallet set {provider}"  # noqa: S608
    )
    return FailedPrecondition(message, reason="INVALID_API_KEY", metadata={"provider": provider})


def provider_error(exc: openai.OpenAIError, provider: str, *, model: str = "") -> TzurotError:
    """The typed error for a failed provider call. Never copies the provider's message."""
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, provider, model)
    if isinstance(exc, ErrorEvent):
        return _event_error(exc, provider, model)
    kind = Unavailable
    if isinstance(exc, openai.APITimeoutError):
        what = "did not answer in time"
        kind = NotSent if _never_sent(exc) else NoAnswerInTime
    elif isinstance(exc, openai.APIConnectionError):
        what = "is unreachable"
        kind = NotSent if _never_sent(exc) else Unavailable
    elif isinstance(exc, StreamCutShort):
        what = "dropped the answer before finishing it"
    else:  # a malformed answer
        what = "failed while answering"
    return kind(
        f"{provider} {what}; try again later",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": provider},
    )


_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)


def _never_sent(exc: openai.APIConnectionError) -> bool:
    """Whether the connection failed before the request was written (the SDK raises from
    httpx2's error): no connection made, or none free in the pool."""
    return isinstance(exc.__cause__, _NOT_SENT)


def _status_error(exc: openai.APIStatusError, provider: str, model: str) -> TzurotError:
    """A 401 is a refused key; a 403 only when its body says the key was refused (OpenAI's
    403 is an unsupported region, Anthropic's a permission the key lacks, OpenRouter's its
    moderation flagging the input: none makes the key invalid)."""
    status, code = exc.status_code, exc.code
    if status == 403 and _moderation_flagged(exc.body):
        return content_flagged(provider)
    if status == 403 and (code in _KEY_REFUSAL_CODES or exc.type in _KEY_REFUSAL_CODES):
        return invalid_api_key(provider, status)
    if status == 400 and (
        code in _CONTEXT_TOO_LONG_CODES or _CONTEXT_TOO_LONG.search(str(exc.message))
    ):
        shown = code if isinstance(code, str) and _PROVIDER_CODE.fullmatch(code) else ""
        return context_too_long(provider, model, shown)
    if code is None and isinstance(exc.type, str) and exc.type in _QUOTA_CODES:
        code = exc.type  # the type alone says so
    retry_after = retry_after_seconds(exc.response.headers)
    return _classified(status, code, provider, model, retry_after=retry_after)


def _moderation_flagged(body: object) -> bool:
    """OpenRouter's moderation error: `metadata` with `reasons` or `flagged_input`."""
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return isinstance(metadata, dict) and ("reasons" in metadata or "flagged_input" in metadata)


def _event_error(exc: ErrorEvent, provider: str, model: str) -> TzurotError:
    """An error event inside a 200 stream, classified by its `code` as the same HTTP status
    would be (OpenRouter sends the upstream's status there: 402, 429…); a code that is no
    HTTP error status (or none), or one the table calls unavailable, is the provider
    failing while answering. The key was accepted before the stream began: a 401/403 there
    is the upstream's, never the user's key refused."""
    if _moderation_flagged(exc.body):
        return content_filtered(provider)
    code = exc.body.get("code") if isinstance(exc.body, dict) else None
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    upstream_refusal = code in (401, 403)  # the upstream's key or access: unavailable
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        classified = _classified(code, None, provider, model, retry_after=None)
        if not (upstream_refusal or isinstance(classified, Unavailable)):
            return classified
    if isinstance(code, str) and code in _CONTENT_FILTER_CODES:
        return content_filtered(provider)
    return Unavailable(
        f"{provider} failed while answering; try again later",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": provider},
    )


def _classified(  # noqa: PLR0911  # one outcome per kind of refusal
    status: int, code: object, provider: str, model: str, *, retry_after: float | None
) -> TzurotError:
    """The typed error for an HTTP error status and the provider's error code."""
    meta = {"provider": provider}
    if status == 401:
        return invalid_api_key(provider, status)
    if isinstance(code, str) and code in _CONTENT_FILTER_CODES:
        return content_filtered(provider)
    if status == 402 or (status == 429 and isinstance(code, str) and code in _QUOTA_CODES):
        # No credit left: waiting does not help, adding credit does (no Retry-After kept).
        detail = f"HTTP {status}" if status == 402 else f"HTTP {status}, {code}"
        return ResourceExhausted(
            f"{provider} refused the request: no credits or quota left on this key ({detail}); "
            f"add credit to the {provider} account",
            reason="PROVIDER_QUOTA_EXCEEDED",
            metadata=meta,
        )
    if status == 429:
        return ResourceExhausted(
            f"{provider} is rate limiting requests (HTTP 429); try again later",
            retry_after_seconds=retry_after,
            reason="PROVIDER_RATE_LIMITED",
            metadata=meta,
        )
    if status == 404 and model:
        return InvalidArgument(
            "model",
            f"{provider} has no model {model!r} (HTTP 404)",
            reason="MODEL_NOT_FOUND",
            metadata={**meta, "model": model},
        )
    if status in (408, 409) or status >= 500:
        return Unavailable(
            f"{provider} is unavailable (HTTP {status}); try again later",
            reason="PROVIDER_UNAVAILABLE",
            metadata=meta,
        )
    # Only the provider's error code, and only when it is a plain identifier.
    shown = code if isinstance(code, str) and _PROVIDER_CODE.fullmatch(code) else ""
    detail = f", {shown}" if shown else ""
    return InvalidArgument(
        "config",
        f"{provider} rejected the request (HTTP {status}{detail})",
        reason="PROVIDER_REJECTED_REQUEST",
        metadata={**meta, "status": str(status), **({"provider_code": shown} if shown else {})},
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The provider's Retry-After (or retry-after-ms) in seconds, when it sent one."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) / divisor
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None


def _b64_format(model: str) -> dict[str, Any]:
    """`response_format="b64_json"` for DALL-E 2 and 3 (whose default is a URL valid for an
    hour, fetched again and paid for in vain when it cannot be); nothing for other models:
    the GPT image models always answer in base64 and refuse the parameter."""
    if model.rsplit("/", 1)[-1].lower().startswith("dall-e"):
        return {"response_format": "b64_json"}
    return {}
