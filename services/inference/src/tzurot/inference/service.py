"""Inference's use-cases: generate a reply, validate a key. No gRPC here.

A reply: resolve whose key pays, read the conversation's recent history, build the prompt,
stream the provider's answer, then report content, usage and which context was used.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from datetime import UTC, datetime

from pydantic import SecretStr

from tzurot.inference.domain import (
    Completion,
    HistoryTurn,
    PromptReport,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    TextDelta,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.ports import HistorySource, LanguageModel
from tzurot.inference.prompt import build_messages, estimate_prompt_tokens
from tzurot.inference.providers import ProviderRegistry
from tzurot.runtime.errors import InvalidArgument, Unavailable

MAX_HISTORY_MESSAGES = 500
"""The most turns one prompt asks memory for (memory's own cap)."""
MAX_API_KEY_CHARS = 4096


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Inference:
    """The use-cases behind the InferenceService RPCs."""

    def __init__(
        self,
        *,
        providers: ProviderRegistry,
        keys: KeyResolver,
        history: HistorySource,
        llm: LanguageModel,
        history_limit: int,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._providers = providers
        self._keys = keys
        self._history = history
        self._llm = llm
        self._history_limit = history_limit
        self._clock = clock

    async def generate_reply(self, request: ReplyRequest) -> AsyncGenerator[ReplyEvent, None]:
        """Yields the answer's text deltas in order, then one ReplyFinished."""
        _check_reply_request(request)
        provider = self._providers.get(request.model.provider)
        key = await self._keys.resolve(
            request.user_id,
            provider,
            free_use=request.model.free_use,
            model=request.model.model,
        )
        history = await self._recent_history(request)
        messages = build_messages(
            request.character,
            history,
            author_name=request.author_name,
            content=request.content,
            timezone=request.timezone,
            now=self._clock(),
        )
        report = PromptReport(
            prompt_tokens_estimate=estimate_prompt_tokens(messages),
            history_turns=len(history),
            key_source=key.source,
        )
        completion: Completion | None = None
        stream = self._llm.stream_chat(
            provider,
            key.api_key,
            model=request.model.model,
            messages=messages,
            parameters=request.model.advanced_parameters,
        )
        async with aclosing(stream):  # a caller that goes away ends the provider call now
            async for event in stream:
                if isinstance(event, TextDelta):
                    yield event
                else:
                    completion = event
        if completion is None:  # a LanguageModel that broke its contract
            raise Unavailable(
                f"{provider.name} ended the answer without finishing it",
                reason="PROVIDER_UNAVAILABLE",
                metadata={"provider": provider.name},
            )
        yield ReplyFinished(
            content=completion.content,
            provider=provider.name,
            model=request.model.model,
            usage=completion.usage,
            finish_reason=completion.finish_reason,
            report=report,
        )

    async def _recent_history(self, request: ReplyRequest) -> list[HistoryTurn]:
        limit = request.max_history_messages or self._history_limit
        if limit <= 0 or not request.channel_id or not request.character.id:
            return []
        return await self._history.recent_turns(
            request.channel_id, request.character.id, min(limit, MAX_HISTORY_MESSAGES)
        )

    async def validate_key(
        self, provider_name: str, *, api_key: SecretStr | None = None, user_id: str | None = None
    ) -> int:
        """Checks a new key (`api_key`) or the user's stored one (`user_id`): models visible.

        A refused key is FailedPrecondition INVALID_API_KEY, as for a reply.
        """
        provider = self._providers.get(provider_name)
        if (api_key is None) == (user_id is None):
            raise InvalidArgument("key", "give exactly one of api_key or user_id")
        if api_key is not None:
            _check_api_key(api_key)
            key = api_key
        else:
            if not user_id:
                raise InvalidArgument("user_id", "user_id is required")
            key = await self._keys.user_key(user_id, provider)
        return await self._llm.count_models(provider, key)


def _check_reply_request(request: ReplyRequest) -> None:
    if not request.user_id:
        raise InvalidArgument("user_id", "user_id is required")
    if not request.model.provider:
        raise InvalidArgument("config.config.provider", "the LLM config names no provider")
    if not request.model.model:
        raise InvalidArgument("config.config.model", "the LLM config names no model")
    if request.max_history_messages < 0:
        raise InvalidArgument("max_history_messages", "max_history_messages must not be negative")


def _check_api_key(api_key: SecretStr) -> None:
    """Rejects an empty, oversized or non-printable key, never quoting it."""
    value = api_key.get_secret_value()
    if not value:
        raise InvalidArgument("api_key", "api_key is required")
    if len(value) > MAX_API_KEY_CHARS:
        raise InvalidArgument("api_key", f"api_key must be at most {MAX_API_KEY_CHARS} characters")
    if not all(char.isprintable() and not char.isspace() for char in value):
        raise InvalidArgument("api_key", "api_key must be printable without spaces")
