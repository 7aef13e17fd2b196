"""One answer from the provider, with the retries a user should never notice.

- Thinking (tags or reasoning fields) is kept out of the answer and returned apart.
- The start of the answer is held back until it can no longer be an echo of the
  "Name: [time]" prefix or a near-repeat of one of the last five replies; a reply that
  nearly repeats one (similarity >= 0.85) is asked again with more temperature and frequency
  penalty, at most twice. What was streamed is never taken back: a repeat found only after
  the answer diverged at its start is kept.
- An empty answer is asked once more, then fails clearly; a content filter is a refusal.
- Each attempt has its own time limit, and all attempts together one more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from tzurot.inference.cleanup import (
    CompiledRule,
    clean_answer,
    could_still_repeat,
    repeats,
    strip_echo,
)
from tzurot.inference.dialects import ProviderCall, build_call
from tzurot.inference.domain import (
    Completion,
    ReasoningDelta,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallStarted,
)
from tzurot.inference.llm import content_filtered
from tzurot.inference.params import AdvancedParameters
from tzurot.inference.ports import LanguageModel
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.inference.thinking import ThinkingFilter, split_thinking
from tzurot.runtime.errors import Unavailable

MAX_REPEAT_RETRIES = 2
MAX_EMPTY_RETRIES = 1
MAX_TIMEOUT_RETRIES = 2
TEMPERATURE_STEP = 0.3
FREQUENCY_STEP = 0.5
HOLD_CHARS = 48
"""Held back at the start: enough to see a "Name: [2025-06-03 14:05] " echo whole."""


@dataclass(frozen=True)
class AnswerSettings:
    attempt_timeout: float = 180.0
    total_timeout: float = 480.0


@dataclass(frozen=True)
class ToolOffer:
    """The skills offered to the model as OpenAI tools; `choice` "none" forces an answer."""

    tools: tuple[dict[str, Any], ...]
    choice: str = "auto"

    @property
    def callable(self) -> bool:
        return bool(self.tools) and self.choice != "none"


@dataclass(frozen=True)
class Answer:
    content: str
    reasoning: str
    usage: TokenUsage
    finish_reason: str
    attempts: int
    tool_calls: tuple[ToolCall, ...] = ()
    """Skill calls the model asked for instead of answering (only when offered)."""


@dataclass
class _Attempt:
    streamed: bool = False
    calling: bool = False
    completion: Completion | None = None


class _Retry(Exception):  # control flow, not an error
    pass


async def answer(
    llm: LanguageModel,
    provider: Provider,
    api_key: SecretStr,
    *,
    model: str,
    params: AdvancedParameters,
    messages: Sequence[ChatMessage],
    name: str,
    recent: Sequence[str],
    rules: Sequence[CompiledRule],
    settings: AnswerSettings,
    clock: Callable[[], float] = time.monotonic,
    tools: ToolOffer | None = None,
) -> AsyncGenerator[TextDelta | Answer, None]:
    """Yields visible text deltas, then one Answer.

    With `tools` the model may answer with tool calls instead: then the Answer carries them
    (and no text is shown once a call began). Only offered tools count: calls a model makes
    under `choice: "none"` are ignored.
    """
    deadline = clock() + settings.total_timeout
    repeats_left, empties_left, timeouts_left = (
        MAX_REPEAT_RETRIES,
        MAX_EMPTY_RETRIES,
        MAX_TIMEOUT_RETRIES,
    )
    input_tokens = output_tokens = attempts = 0
    boost = 0
    while True:
        attempts += 1
        call = build_call(
            provider.name,
            model,
            params,
            messages,
            temperature_boost=TEMPERATURE_STEP * boost,
            frequency_boost=FREQUENCY_STEP * boost,
        )
        if tools is not None and tools.tools:
            call.body["tools"] = list(tools.tools)
            call.body["tool_choice"] = tools.choice
        state = _Attempt()
        limit = min(settings.attempt_timeout, deadline - clock())
        stream = _attempt(llm, _Target(provider, api_key, model), call, name, recent, state)
        try:
            # The limit covers waiting for the provider, never the caller's time between
            # deltas (a timeout around a yield would cancel the caller's own await).
            limited = _within(stream, clock() + max(limit, 0.0), clock)
            async with aclosing(stream), aclosing(limited):
                async for delta in limited:
                    yield delta
        except TimeoutError:
            if state.streamed or timeouts_left == 0 or deadline - clock() <= 0:
                raise Unavailable(
                    f"{provider.name} did not answer in time; try again later",
                    reason="PROVIDER_TIMEOUT",
                    metadata={"provider": provider.name},
                ) from None
            timeouts_left -= 1
            continue
        completion = state.completion
        assert completion is not None  # _attempt sets it or raises
        input_tokens += completion.usage.input_tokens
        output_tokens += completion.usage.output_tokens
        if completion.finish_reason == "content_filter":
            raise content_filtered(provider.name)
        if completion.tool_calls and tools is not None and tools.callable:
            yield Answer(
                content="",
                reasoning=completion.reasoning.strip(),
                usage=TokenUsage(input_tokens, output_tokens),
                finish_reason=completion.finish_reason or "tool_calls",
                attempts=attempts,
                tool_calls=completion.tool_calls,
            )
            return
        visible, tag_reasoning = split_thinking(completion.content)
        content = clean_answer(visible, name, rules)
        reasoning = "\n\n".join(r for r in (completion.reasoning.strip(), tag_reasoning) if r)
        if not content:
            if empties_left > 0 and deadline - clock() > 0:
                empties_left -= 1
                continue
            raise Unavailable(
                f"{provider.name} returned an empty answer twice; try again or choose "
                "another model",
                reason="EMPTY_ANSWER",
                metadata={"provider": provider.name},
            )
        if (
            not state.streamed
            and repeats_left > 0
            and repeats(content, recent)
            and deadline - clock() > 0
        ):
            repeats_left -= 1
            boost += 1
            continue
        if not state.streamed:  # held back to the end: the cleaned answer goes out whole
            yield TextDelta(content)
        yield Answer(
            content=content,
            reasoning=reasoning,
            usage=TokenUsage(input_tokens, output_tokens),
            finish_reason=completion.finish_reason,
            attempts=attempts,
        )
        return


async def _within(
    stream: AsyncGenerator[TextDelta, None], deadline: float, clock: Callable[[], float]
) -> AsyncGenerator[TextDelta, None]:
    """The stream's deltas; TimeoutError when the next one is not there by `deadline`."""
    while True:
        try:
            async with asyncio.timeout(max(deadline - clock(), 0.0)):
                delta = await anext(stream)
        except StopAsyncIteration:
            return
        yield delta


@dataclass(frozen=True)
class _Target:
    provider: Provider
    api_key: SecretStr
    model: str


async def _attempt(  # noqa: PLR0917  # one private call site
    llm: LanguageModel,
    target: _Target,
    call: ProviderCall,
    name: str,
    recent: Sequence[str],
    state: _Attempt,
) -> AsyncGenerator[TextDelta, None]:
    """One provider call; streams visible text once the held-back start is safe to show."""
    provider = target.provider
    thinking = ThinkingFilter()
    held = ""
    stream = llm.stream_chat(provider, target.api_key, model=target.model, call=call)
    async with aclosing(stream):
        async for event in stream:
            if isinstance(event, ReasoningDelta):
                continue
            if isinstance(event, ToolCallStarted):
                state.calling = True  # the rest of this response is a skill call, not the answer
                continue
            if isinstance(event, Completion):
                state.completion = event
                break
            if state.calling:
                continue
            visible = thinking.feed(event.text)
            if state.streamed:
                if visible:
                    yield TextDelta(visible)
                continue
            held += visible
            if len(held.strip()) >= HOLD_CHARS and not could_still_repeat(held, recent):
                shown = strip_echo(held, name).lstrip()
                if shown:
                    state.streamed = True
                    yield TextDelta(shown)
    if state.completion is None:
        raise Unavailable(
            f"{provider.name} ended the answer without finishing it",
            reason="PROVIDER_UNAVAILABLE",
            metadata={"provider": provider.name},
        )
