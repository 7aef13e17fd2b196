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
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionAssistantMessageParam,
    ChatCompletionChunk,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from pydantic import SecretStr

from tzurot.inference.domain import Completion, StreamEvent, TextDelta, TokenUsage
from tzurot.inference.prompt import ChatMessage, estimate_prompt_tokens, estimate_tokens
from tzurot.inference.providers import Provider
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

_FLOAT_PARAMETERS = frozenset({"temperature", "top_p", "presence_penalty", "frequency_penalty"})
_INT_PARAMETERS = frozenset({"max_tokens", "max_completion_tokens", "seed"})
SAFE_PARAMETERS = _FLOAT_PARAMETERS | _INT_PARAMETERS | {"stop"}
"""Advanced parameters passed to the provider; anything else is dropped."""

_PROVIDER_CODE = re.compile(r"[a-z_]{1,48}")


def sampling_parameters(advanced: Mapping[str, Any]) -> dict[str, Any]:
    """The known-safe sampling parameters, with whole numbers made ints again.

    The config travels as a protobuf Struct, where every number is a double; providers
    reject `max_tokens: 512.0`.
    """
    chosen: dict[str, Any] = {}
    for name, value in advanced.items():
        if name in _FLOAT_PARAMETERS and _is_number(value):
            chosen[name] = float(value)
        elif name in _INT_PARAMETERS and _is_number(value) and float(value).is_integer():
            chosen[name] = int(value)
        elif name == "stop" and _is_stop(value):
            chosen[name] = value
    return chosen


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_stop(value: object) -> bool:
    if isinstance(value, str):
        return True
    return (
        isinstance(value, list)
        and 0 < len(value) <= 4
        and all(isinstance(item, str) for item in value)
    )


def _openai_messages(messages: Sequence[ChatMessage]) -> list[ChatCompletionMessageParam]:
    converted: list[ChatCompletionMessageParam] = []
    for message in messages:
        if message["role"] == "system":
            converted.append(
                ChatCompletionSystemMessageParam(role="system", content=message["content"])
            )
        elif message["role"] == "assistant":
            converted.append(
                ChatCompletionAssistantMessageParam(role="assistant", content=message["content"])
            )
        else:
            converted.append(
                ChatCompletionUserMessageParam(role="user", content=message["content"])
            )
    return converted


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
        messages: Sequence[ChatMessage],
        parameters: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yields the answer's text deltas in order, then one Completion."""
        client = self._client(provider, api_key)
        pieces: list[str] = []
        usage: TokenUsage | None = None
        finish_reason = ""
        try:
            # client.post, not chat.completions.create: create first runs the SDK's typed
            # transform over every message (~1 ms each, most of a turn's CPU), a no-op for
            # plain text messages like ours. Same request, same stream, same errors.
            stream = await client.post(
                "/chat/completions",
                cast_to=ChatCompletion,
                body={
                    **sampling_parameters(parameters or {}),
                    "model": model,
                    "messages": _openai_messages(messages),
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
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
            usage = TokenUsage(estimate_prompt_tokens(messages), estimate_tokens(content))
        yield Completion(content=content, usage=usage, finish_reason=finish_reason)

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
