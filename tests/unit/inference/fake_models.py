"""Fakes of inference's ports (ports.py) that several tests share: a language model whose
calls a test did not mean to make fail it, one that asks for skills then answers, and a
conversation with no history."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

from pydantic import SecretStr

from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    Completion,
    HistoryTurn,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallStarted,
    Transcript,
)
from tzurot.inference.providers import Provider


class UnusedModel:
    """A `LanguageModel` whose every call fails the test ("not used here"): a fake subclasses
    it and defines only the calls its test makes."""

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        raise AssertionError("not used here")
        yield  # an async generator, as the real client's

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        raise AssertionError("not used here")

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
        raise AssertionError("not used here")


class ToolModel(UnusedModel):
    """Asks for every skill in `calls` at once, then answers `answer`; or, with `failure`,
    fails every later round with it (a 5xx, a content filter, a bug)."""

    def __init__(
        self, calls: tuple[str, ...], failure: Exception | None = None, answer: str = "Answered."
    ) -> None:
        self.calls = calls
        self.failure = failure
        self.answer = answer
        self.asked = 0

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
        max_retries: int | None = None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        self.asked += 1
        if self.asked == 1 and self.calls:
            yield ToolCallStarted()
            tool_calls = tuple(ToolCall(f"c{n}", name, "{}") for n, name in enumerate(self.calls))
            yield Completion("", TokenUsage(10, 2), "tool_calls", tool_calls=tool_calls)
            return
        if self.failure is not None:
            raise self.failure
        yield TextDelta(self.answer)
        yield Completion(self.answer, TokenUsage(20, 4), "stop")

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        return 1


class NoHistory:
    """A conversation with nothing said before."""

    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[HistoryTurn]:
        return []
