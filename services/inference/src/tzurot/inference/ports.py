"""What inference's use-cases need from outside: history, the user's keys, a language model."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Protocol

from pydantic import SecretStr

from tzurot.inference.domain import HistoryTurn, StreamEvent
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider


class HistorySource(Protocol):
    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int
    ) -> list[HistoryTurn]:
        """The newest `limit` turns of the conversation, oldest first."""
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
        messages: Sequence[ChatMessage],
        parameters: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yields the answer's text deltas in order, then one Completion.

        Closing the generator early ends the provider call (the caller went away).
        """
        ...

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        """How many models the key can see; the typed provider error when it is refused."""
        ...
