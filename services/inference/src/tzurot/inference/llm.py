"""Streamed chat completions from an OpenAI-compatible provider, with errors classified.

One `httpx2.AsyncClient` (connection pool) serves the whole process; each call builds a
cheap `AsyncOpenAI` around it with the caller's key, so keys never outlive a call and never
mix between users. The SDK retries connection errors, 408, 409, 429 and 5xx with backoff;
what still fails becomes a typed error whose message names the provider and never repeats
the provider's own text (error bodies can echo part of the key).
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncGenerator, Mapping

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import SecretStr

from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    Completion,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TokenUsage,
)
from tzurot.inference.prompt import estimate_prompt_tokens, estimate_tokens
from tzurot.inference.providers import Provider
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

_PROVIDER_CODE = re.compile(r"[a-z_]{1,48}")
_CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})
REASONING_FIELDS = ("reasoning", "reasoning_content")
"""Where providers stream thinking apart from the answer (OpenRouter; DeepSeek, vLLM)."""


def content_filtered(provider: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{provider} refused to answer: its content filter blocked this conversation",
        reason="CONTENT_FILTERED",
        metadata={"provider": provider},
    )


def _reasoning_piece(delta: object) -> str:
    extra = getattr(delta, "model_extra", None) or {}
    for name in REASONING_FIELDS:
        value = extra.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


class LlmClient:
    """Calls providers over one shared connection pool; close it when the process stops."""

    def __init__(
        self,
        *,
        max_retries: int,
        timeout_seconds: float,
        http_client: openai.DefaultAsyncHttpxClient | None = None,
    ) -> None:
        self._http = http_client or openai.DefaultAsyncHttpxClient()
        self._max_retries = max_retries
        self._timeout = timeout_seconds

    async def aclose(self) -> None:
        await self._http.aclose()

    def _client(self, provider: Provider, api_key: SecretStr) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=provider.base_url,
            api_key=api_key.get_secret_value(),
            max_retries=self._max_retries,
            timeout=self._timeout,
            http_client=self._http,
        )

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yields the answer's text (and reasoning) deltas in order, then one Completion."""
        client = self._client(provider, api_key)
        pieces: list[str] = []
        thoughts: list[str] = []
        usage: TokenUsage | None = None
        finish_reason = ""
        try:
            # client.post, not chat.completions.create: create first runs the SDK's typed
            # transform over every message (~1 ms each, most of a turn's CPU), a no-op for
            # the plain messages dialects.py builds. Same request, same stream, same errors.
            stream = await client.post(
                "/chat/completions",
                cast_to=ChatCompletion,
                body={
                    **call.body,
                    "model": model,
                    "messages": call.messages,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
                options={"headers": call.headers} if call.headers else {},
                stream=True,
                stream_cls=openai.AsyncStream[ChatCompletionChunk],
            )
            try:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = TokenUsage(
                            input_tokens=chunk.usage.prompt_tokens,
                            output_tokens=chunk.usage.completion_tokens,
                        )
                    for choice in chunk.choices[:1]:
                        thought = _reasoning_piece(choice.delta)
                        if thought:
                            thoughts.append(thought)
                            yield ReasoningDelta(thought)
                        if choice.delta.content:
                            pieces.append(choice.delta.content)
                            yield TextDelta(choice.delta.content)
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
            finally:
                await stream.close()
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name, model=model) from None
        content = "".join(pieces)
        if usage is None:
            usage = TokenUsage(estimate_prompt_tokens(call.messages), estimate_tokens(content))
        yield Completion(
            content=content, usage=usage, finish_reason=finish_reason, reasoning="".join(thoughts)
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
    ) -> str:
        """The text of an audio file through `/audio/transcriptions` (Whisper)."""
        client = self._client(provider, api_key)
        try:
            result = await client.audio.transcriptions.create(
                model=model, file=(filename, audio, content_type)
            )
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name, model=model) from None
        return result.text

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        """How many models the key can see: a cheap call that proves the key works."""
        client = self._client(provider, api_key)
        try:
            return len([model async for model in client.models.list()])
        except openai.NotFoundError:
            raise FailedPrecondition(
                f"cannot check the key: {provider.name} does not list models (HTTP 404)",
                reason="KEY_CHECK_UNSUPPORTED",
                metadata={"provider": provider.name},
            ) from None
        except openai.OpenAIError as exc:
            raise provider_error(exc, provider.name) from None


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
    if isinstance(exc, openai.APITimeoutError):
        what = "did not answer in time"
    elif isinstance(exc, openai.APIConnectionError):
        what = "is unreachable"
    else:  # an error event inside the stream, or a malformed answer
        what = "failed while answering"
    return Unavailable(
        f"{provider} {what}; try again later",
        reason="PROVIDER_UNAVAILABLE",
        metadata={"provider": provider},
    )


def _status_error(exc: openai.APIStatusError, provider: str, model: str) -> TzurotError:
    status, meta = exc.status_code, {"provider": provider}
    if status in (401, 403):
        return invalid_api_key(provider, status)
    if isinstance(exc.code, str) and exc.code in _CONTENT_FILTER_CODES:
        return content_filtered(provider)
    if status in (402, 429):
        quota = status == 402
        return ResourceExhausted(
            f"{provider} refused the request: no credits or quota left on this key (HTTP 402)"
            if quota
            else f"{provider} is rate limiting requests (HTTP 429); try again later",
            retry_after_seconds=retry_after_seconds(exc.response.headers),
            reason="PROVIDER_QUOTA_EXCEEDED" if quota else "PROVIDER_RATE_LIMITED",
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
    code = exc.code if isinstance(exc.code, str) and _PROVIDER_CODE.fullmatch(exc.code) else ""
    detail = f", {code}" if code else ""
    return InvalidArgument(
        "config",
        f"{provider} rejected the request (HTTP {status}{detail})",
        reason="PROVIDER_REJECTED_REQUEST",
        metadata={**meta, "status": str(status), **({"provider_code": code} if code else {})},
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
