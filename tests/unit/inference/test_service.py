"""The reply and key-check use-cases with in-memory ports (no gRPC, no HTTP)."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from tests.unit.inference.fake_models import UnusedModel
from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    Character,
    Completion,
    HistoryTurn,
    ModelChoice,
    PromptSent,
    ReplyEvent,
    ReplyFinished,
    ReplyRequest,
    StreamEvent,
    TextDelta,
    TokenUsage,
)
from tzurot.inference.keys import KeyResolver
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.service import Inference
from tzurot.runtime.errors import FailedPrecondition, InvalidArgument

USER = "3f1f9a8e-8c1e-4d5b-9a57-0f3c2b1a9d10"
USER_KEY = "sk-userKEYzq7Wm3Xv9Rt2"
NOW = datetime(2025, 6, 3, 12, 5, tzinfo=UTC)

REQUEST = ReplyRequest(
    job_id="job-1",
    user_id=USER,
    author_name="Ann",
    channel_id="chan-1",
    character=Character(id="p-1", name="Lilith", system_prompt="You are Lilith."),
    model=ModelChoice(
        provider="openrouter", model="m/one", advanced_parameters={"temperature": 0.7}
    ),
    content="hello",
)


class FakeVault:
    def __init__(self, keys: dict[tuple[str, str], str]) -> None:
        self.keys = keys

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        key = self.keys.get((user_id, provider))
        return None if key is None else SecretStr(key)


class FakeHistory:
    def __init__(self, turns: list[HistoryTurn]) -> None:
        self.turns = turns
        self.calls: list[tuple[str, str, int]] = []

    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[HistoryTurn]:
        self.calls.append((channel_id, personality_id, limit))
        return self.turns[-limit:]


class FakeModel(UnusedModel):
    """Answers with fixed pieces; records what it was asked."""

    def __init__(
        self, pieces: Sequence[str] = ("Hi", " Ann"), models: int = 3, *, stall_after: int = -1
    ) -> None:
        self.pieces = pieces
        self.models = models
        self.calls: list[dict[str, Any]] = []
        self.closed = False
        self.stall_after = stall_after
        """After this many pieces the provider goes quiet (still answering); -1: never."""

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
        self.calls.append(
            {
                "provider": provider.name,
                "api_key": api_key.get_secret_value(),
                "model": model,
                "messages": list(call.messages),
                "parameters": dict(call.body),
            }
        )
        try:
            for n, piece in enumerate(self.pieces):
                if n == self.stall_after:
                    await asyncio.Event().wait()
                yield TextDelta(piece)
            yield Completion("".join(self.pieces), TokenUsage(11, 2), "stop")
        finally:
            self.closed = True

    async def count_models(self, provider: Provider, api_key: SecretStr) -> int:
        self.calls.append({"provider": provider.name, "api_key": api_key.get_secret_value()})
        return self.models


def make(
    *,
    keys: dict[tuple[str, str], str] | None = None,
    history: FakeHistory | None = None,
    model: FakeModel | None = None,
    system_keys: dict[str, SecretStr] | None = None,
    vault: FakeVault | None = None,
) -> tuple[Inference, FakeHistory, FakeModel]:
    history = history or FakeHistory([])
    model = model or FakeModel()
    vault = vault or FakeVault({(USER, "openrouter"): USER_KEY} if keys is None else keys)
    inference = Inference(
        providers=ProviderRegistry(),
        keys=KeyResolver(vault, system_keys),
        history=history,
        llm=model,
        history_limit=30,
        clock=lambda: NOW,
    )
    return inference, history, model


async def collect(events: AsyncIterator[ReplyEvent]) -> list[ReplyEvent]:
    return [event async for event in events]


async def test_reply_streams_then_finishes_with_a_report() -> None:
    turns = [HistoryTurn("user", "Bob", "yo"), HistoryTurn("assistant", "Lilith", "Greetings.")]
    inference, history, model = make(history=FakeHistory(turns))
    events = await collect(inference.generate_reply(REQUEST))
    # The request announced as it goes out; a short answer is held back whole (it could still
    # be an echo or a repeat).
    sent, *events = events
    assert isinstance(sent, PromptSent)
    assert (sent.provider, sent.model) == ("openrouter", "m/one")
    assert sent.input_tokens > 0
    assert events[:1] == [TextDelta("Hi Ann")]
    finished = events[1]
    assert isinstance(finished, ReplyFinished)
    assert (finished.content, finished.provider, finished.model) == (
        "Hi Ann",
        "openrouter",
        "m/one",
    )
    assert (finished.usage, finished.finish_reason) == (TokenUsage(11, 2), "stop")
    assert finished.report.history_turns == 2
    assert finished.report.key_source == "user"
    assert finished.report.prompt_tokens_estimate > 0
    assert history.calls == [("chan-1", "p-1", 30)]
    [call] = model.calls
    assert call["api_key"] == USER_KEY
    assert call["parameters"] == {"temperature": 0.7}
    contents = [m["content"] for m in call["messages"]]
    assert contents[0].startswith("You are Lilith.\n\n## Conversation\n")
    assert contents[1:] == [
        "Bob: yo",
        "Greetings.",
        "Current date and time: Tuesday, 3 June 2025, 12:05 (UTC)",
        "Ann: hello",
    ]


async def test_a_caller_that_goes_away_ends_the_provider_call() -> None:
    first = "A long enough opening that streaming starts at once, "
    inference, _, model = make(model=FakeModel([first, "then more"], stall_after=1))
    events = inference.generate_reply(REQUEST)
    assert isinstance(await anext(events), PromptSent)
    assert await anext(events) == TextDelta(first)
    await asyncio.sleep(0.01)  # the provider is still answering
    assert not model.closed
    await events.aclose()
    assert model.closed


async def test_request_history_limit_wins_over_the_setting() -> None:
    inference, history, _ = make()
    await collect(inference.generate_reply(replace(REQUEST, max_history_messages=5)))
    await collect(inference.generate_reply(replace(REQUEST, max_history_messages=5000)))
    assert history.calls == [("chan-1", "p-1", 5), ("chan-1", "p-1", 500)]


async def test_no_key_fails_before_the_provider() -> None:
    inference, _, model = make(keys={})
    with pytest.raises(FailedPrecondition) as caught:
        await collect(inference.generate_reply(REQUEST))
    assert caught.value.reason == "NO_API_KEY"
    assert model.calls == []


class StalledHistory(FakeHistory):
    """A history read that never ends by itself; it records starting and being cancelled."""

    def __init__(self) -> None:
        super().__init__([])
        self.started = asyncio.Event()
        self.cancelled = False

    async def recent_turns(
        self, channel_id: str, personality_id: str, limit: int, *, whole_channel: bool = False
    ) -> list[HistoryTurn]:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


class VaultAfter(FakeVault):
    """Answers (no key) only once `event` is set."""

    def __init__(self, event: asyncio.Event) -> None:
        super().__init__({})
        self.event = event

    async def decrypt(self, user_id: str, provider: str) -> SecretStr | None:
        await self.event.wait()
        return await super().decrypt(user_id, provider)


async def test_the_key_is_decrypted_while_memory_is_read_and_a_refusal_ends_the_read() -> None:
    history = StalledHistory()
    inference, _, model = make(history=history, vault=VaultAfter(history.started))
    async with asyncio.timeout(30):  # a guard against a hang, not a timing assertion
        with pytest.raises(FailedPrecondition) as caught:
            await collect(inference.generate_reply(REQUEST))
    assert caught.value.reason == "NO_API_KEY"
    assert history.cancelled
    assert model.calls == []


async def test_free_use_runs_on_the_system_key() -> None:
    inference, _, model = make(keys={}, system_keys={"openrouter": SecretStr("sk-or-opKEY")})
    request = replace(REQUEST, model=replace(REQUEST.model, free_use=True))
    events = await collect(inference.generate_reply(request))
    finished = events[-1]
    assert isinstance(finished, ReplyFinished)
    assert finished.report.key_source == "system"
    assert model.calls[0]["api_key"] == "sk-or-opKEY"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"max_history_messages": -1}, "max_history_messages"),
        ({"model": ModelChoice(provider="", model="m")}, "config.config.provider"),
        ({"model": ModelChoice(provider="openai", model="")}, "config.config.model"),
        ({"model": ModelChoice(provider="nope", model="m")}, "provider"),
    ],
)
async def test_invalid_requests(change: dict[str, Any], field: str) -> None:
    inference, _, model = make()
    with pytest.raises(InvalidArgument) as caught:
        await collect(inference.generate_reply(replace(REQUEST, **change)))
    assert caught.value.field == field
    assert model.calls == []


async def test_validate_a_new_key() -> None:
    inference, _, model = make(model=FakeModel(models=7))
    count = await inference.validate_key("openai", api_key=SecretStr("sk-newKEY123"))
    assert count == 7
    assert model.calls == [{"provider": "openai", "api_key": "sk-newKEY123"}]


async def test_validate_the_stored_key() -> None:
    inference, _, model = make()
    assert await inference.validate_key("openrouter", user_id=USER) == 3
    assert model.calls[0]["api_key"] == USER_KEY
    with pytest.raises(FailedPrecondition, match="no API key for openai"):
        await inference.validate_key("openai", user_id=USER)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "key"),
        ({"api_key": SecretStr("sk-a"), "user_id": USER}, "key"),
        ({"api_key": SecretStr("")}, "api_key"),
        ({"api_key": SecretStr("sk with spaces")}, "api_key"),
        # Found by the fuzz suite: httpx cannot put it in a header (was INTERNAL).
        ({"api_key": SecretStr("sk-🌙🌙🌙")}, "api_key"),
        ({"api_key": SecretStr("x" * 5000)}, "api_key"),
        ({"user_id": ""}, "user_id"),
    ],
)
async def test_validate_key_rejects_bad_input(kwargs: dict[str, Any], field: str) -> None:
    inference, _, model = make()
    with pytest.raises(InvalidArgument) as caught:
        await inference.validate_key("openai", **kwargs)
    assert caught.value.field == field
    assert "sk with spaces" not in caught.value.message
    assert model.calls == []
