"""What inference's use-cases need from outside: history, the user's keys, a language model."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import Protocol

from pydantic import SecretStr

from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    Downloaded,
    HistoryTurn,
    MemoryItem,
    ReplyContext,
    ReplyContextQuery,
    StreamEvent,
    Transcript,
)
from tzurot.inference.providers import Provider


class HistorySource(Protocol):
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[HistoryTurn]:
        """The newest `limit` turns of the conversation, oldest first (every personality's
        in the channel with `whole_channel`)."""
        ...


class KeyDecryptor(Protocol):
    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        """The user's stored key for `provider`; None when the user has none."""
        ...


class LanguageModel(Protocol):
    def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yields the answer's text and reasoning deltas in order, then one Completion.

        Closing the generator early ends the provider call (the caller went away).
        `request_timeout` bounds each step of the request. One request: its failure is
        raised at once (retries.py decides what is asked again). `on_accepted` is awaited
        once the provider accepted the request (its 200's headers), before any chunk.
        """
        ...

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        """How many models the key can see; the typed provider error when it is refused."""
        ...

    async def transcribe(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        audio: bytes,
        filename: str,
        content_type: str,
        time_limit: float | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Transcript:
        """The transcript of an audio file (OpenAI-compatible `/audio/transcriptions`), with
        what the provider billed for it. `time_limit` bounds the whole request (past it:
        NoAnswerInTime once the upload went out whole); `on_sent` is called as the upload is
        handed over whole (each attempt)."""
        ...


class MemorySource(Protocol):
    async def relevant_memories(
        self,
        *,
        personality_id: str,
        user_id: str,
        query: str,
        limit: int,
        threshold: float,
        exclude_after: datetime | None,
    ) -> list[MemoryItem]:
        """Long-term memories relevant to `query`, most relevant first; [] when none."""
        ...


class ReplyContextSource(Protocol):
    async def reply_context(self, query: ReplyContextQuery) -> ReplyContext:
        """The turns and the relevant memories in one read; a TzurotError when memory
        cannot give the turns (a failed search alone is `memories_unavailable`)."""
        ...


class Downloader(Protocol):
    async def fetch(
        self, url: str, *, field: str, max_bytes: int, allowed_types: frozenset[str]
    ) -> Downloaded:
        """The bytes at `url`; InvalidArgument naming `field` when too large or of a type not
        allowed (checked while streaming, so an oversized file is never read whole)."""
        ...
