"""One answer from the provider, with the retries a user should never notice.

- Thinking (tags or reasoning fields) is kept out of the answer and returned apart.
- The start of the answer is held back until it can no longer be an echo of the
  "Name: [time]" prefix or a near-repeat of one of the last five replies; a reply that
  nearly repeats one (similarity >= 0.85) is asked again with more temperature and frequency
  penalty, at most twice. What was streamed is never taken back: a repeat found only after
  the answer diverged at its start is kept.
- An empty answer is asked once more, then fails clearly; one cut off by max_tokens
  (finish_reason "length": thinking used them all) is not asked again, as it would end the
  same way: the user is told to raise max_tokens or think less. A content filter is a refusal.
- Time is counted while the provider is silent, never while it answers: its first event
  (thinking counts) must come within `first_event_timeout`, each later one within
  `idle_timeout` of the one before. No attempt starts, nor waits for any event, past the
  answer's deadline: `total_timeout` from its start, or sooner the caller's (a reply passes
  one deadline to all its tool rounds, so a round never gets a fresh `total_timeout`; the
  reply's ends a grace before its caller's, service.py). Nothing is sent once the deadline
  passed; an answer still streaming then is cut off (DEADLINE_EXCEEDED, after its estimate),
  so its error, with what the reply must report, reaches the caller before its own cut.
- A retry, and a round that may still call skills, start only while the time left holds the
  wait and the attempt's floor (`min_attempt_seconds`, or `first_event_timeout` when
  shorter); with less, the error is the outcome (a 429's with its Retry-After: the caller hears
  when to try again instead of running into its own deadline) and the model must answer now.
- A provider is asked again only while it has sent nothing on this attempt: after a silent
  attempt (twice; its prompt is estimated into the usage, as the provider may bill it, also
  when it is not asked again; and the meter is said at once, RoundsBilled, so a reply
  cancelled from then on counts it: no report of it came yet), and
  as retries.py allows every provider call: a 5xx or an unreachable provider (with
  backoff), or once after a 429 whose Retry-After fits in the time left and is shorter than
  MAX_RATE_LIMIT_WAIT_SECONDS (else the 429 is reported with it, so the user hears when to
  try again). The SDK's own retries are off, so no wait hides inside a time limit.
- An attempt that broke off once the provider began answering (the stream dropped or went
  idle, an error event, a body that ended unfinished) was billed, but its usage chunk never
  came: its prompt and what it received (text, reasoning, and the tool calls' names and
  arguments so far) are estimated (broken_off.py) and yielded at once as
  a UsageSpent (failed, estimated), before its error (or before what follows, were it ever
  asked again); never counted in the answer's usage nor in the meter.
- Each attempt is announced once the provider began answering it, at its first streamed
  event (PromptSent: its prompt's tokens, estimated as broken_off.py counts them), so a reply
  cancelled before any report of it is estimated with its prompt by the gateway. Never as it
  goes out: an attempt the provider refused before any event (a 401, 403, 400, 429, 5xx) was
  not billed, and one it never answered (silence) is estimated into the answer's own usage
  instead (said with the rounds billed, RoundsBilled, once it is abandoned); neither is
  announced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from tzurot.inference.broken_off import broken_off_usage, prompt_sent
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
    PromptSent,
    ReasoningDelta,
    RoundsBilled,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallStarted,
    ToolCallText,
    UsageMeter,
    UsageSpent,
)
from tzurot.inference.params import FIELD_PREFIX, AdvancedParameters
from tzurot.inference.ports import LanguageModel
from tzurot.inference.prompt import ChatMessage, estimate_prompt_tokens
from tzurot.inference.provider_errors import content_filtered
from tzurot.inference.providers import Provider
from tzurot.inference.retries import Retries
from tzurot.inference.thinking import ThinkingFilter, split_thinking
from tzurot.runtime.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

MAX_REPEAT_RETRIES = 2
MAX_EMPTY_RETRIES = 1
MAX_TIMEOUT_RETRIES = 2
TEMPERATURE_STEP = 0.3
FREQUENCY_STEP = 0.5
TIMER_SLACK_SECONDS = 0.01
HOLD_CHARS = 48
"""Held back at the start: enough to see a "Name: [2025-06-03 14:05] " echo whole."""


@dataclass(frozen=True)
class AnswerSettings:
    first_event_timeout: float = 180.0
    """From sending a request to the provider's first event (thinking counts)."""
    idle_timeout: float = 120.0
    """The longest silence between two events once the provider began."""
    total_timeout: float = 480.0
    """No attempt starts, nor waits for its first event, later than this after the first."""
    failure_retries: int = 2
    """Attempts again after a 5xx or an unreachable provider, before anything came."""
    retry_backoff: float = 0.5
    """The first wait before such a retry; doubled for each next one (at most 8 s)."""
    min_attempt_seconds: float = 15.0
    """A retry (after its wait), or a round that may call skills, starts only with this much
    time left (or `first_event_timeout`, when shorter): less would be cut off unanswered.
    The operator's `TZUROT_MIN_ATTEMPT_SECONDS`."""


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
    started: bool = False
    """The provider sent an event: it is answering, and is never asked again."""
    streamed: bool = False
    calling: bool = False
    completion: Completion | None = None
    received: list[str] = field(default_factory=list)
    """The text, reasoning and tool calls' text (names, arguments) the provider sent (what it
    bills when the stream breaks)."""


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
    deadline: float | None = None,
    meter: UsageMeter | None = None,
) -> AsyncGenerator[TextDelta | UsageSpent | PromptSent | RoundsBilled | Answer, None]:
    """Yields visible text deltas, then one Answer; a PromptSent as the provider begins
    answering each attempt (its first event: never for one it refused or left silent); a
    UsageSpent (failed, estimated) for each attempt the provider broke off once it began
    answering, as soon as it broke; and, with a `meter`, a RoundsBilled (the meter) as soon as
    an attempt the provider left silent is abandoned, its prompt's estimate now in it.

    With `tools` the model may answer with tool calls instead: then the Answer carries them
    (and no text is shown once a call began). Only offered tools count: calls a model makes
    under `choice: "none"` are ignored; with less time left than the floor they are offered
    so (the model answers now).

    `deadline`: the `clock`'s time by which the answer must be done (a reply's: the caller's
    deadline or `total_timeout` from the reply's start, whichever is sooner; one for all
    its rounds). None: `total_timeout` from now.

    `meter`: every call this answer pays for is added to it as it is paid (also those of an
    answer that then fails: content filter, empty twice, max_tokens used up, a later error),
    for the caller to report what a failed reply was billed (UsageSpent).
    """
    budget = _Budget(settings, clock, deadline)
    budget.meter = meter
    tools = budget.offer(tools)
    attempts = boost = 0
    while True:
        budget.check_time(provider.name)
        attempts += 1
        call = _call(provider, model, params, messages, boost, tools)
        state = _Attempt()
        target = _Target(provider, api_key, model)
        stream = _attempt(llm, target, call, name, recent, state, budget.limits())
        try:
            async with aclosing(stream):
                async for delta in stream:
                    yield delta
        except (TimeoutError, TzurotError) as err:
            for said in budget.cost_of(err, state, call, target):
                yield said
            wait = budget.retry(err, state)
            if wait is None:
                if isinstance(err, TimeoutError) and state.started and budget.ran_out():
                    raise _out_of_time(provider.name) from None
                if isinstance(err, TimeoutError):
                    raise _no_answer_in_time(provider.name) from None
                raise
            await asyncio.sleep(wait)
            continue
        completion = state.completion
        assert completion is not None  # _attempt sets it or raises
        usage = completion.usage
        budget.spent(usage.input_tokens, usage.output_tokens, estimated=usage.estimated)
        if completion.finish_reason == "content_filter":
            raise content_filtered(provider.name)
        if completion.tool_calls and tools is not None and tools.callable:
            yield Answer(
                content="",
                reasoning=completion.reasoning.strip(),
                usage=budget.usage,
                finish_reason=completion.finish_reason or "tool_calls",
                attempts=attempts,
                tool_calls=completion.tool_calls,
            )
            return
        visible, tag_reasoning = split_thinking(completion.content)
        content = clean_answer(visible, name, rules)
        reasoning = "\n\n".join(r for r in (completion.reasoning.strip(), tag_reasoning) if r)
        if not content:
            budget.retry_empty(completion.finish_reason, provider.name)
            continue
        if not state.streamed and budget.repeats > 0 and repeats(content, recent) and budget.fits():
            budget.repeats -= 1
            boost += 1
            continue
        if not state.streamed:  # held back to the end: the cleaned answer goes out whole
            yield TextDelta(content)
        yield Answer(
            content=content,
            reasoning=reasoning,
            usage=budget.usage,
            finish_reason=completion.finish_reason,
            attempts=attempts,
        )
        return


class _Budget:
    """What one answer may still spend: time, and retries of each kind; and what it spent."""

    meter: UsageMeter | None = None
    """Where what it spent is added too, as it is spent (answer's `meter`)."""

    def __init__(
        self, settings: AnswerSettings, clock: Callable[[], float], deadline: float | None
    ) -> None:
        self._settings, self._clock = settings, clock
        self._deadline = clock() + settings.total_timeout if deadline is None else deadline
        self._floor = min(settings.min_attempt_seconds, settings.first_event_timeout)
        self.repeats, self._empties = MAX_REPEAT_RETRIES, MAX_EMPTY_RETRIES
        self._timeouts = MAX_TIMEOUT_RETRIES
        self._retries = Retries(
            failures=settings.failure_retries,
            backoff=settings.retry_backoff,
            # A wait must leave the next attempt its floor: else the error is the outcome.
            time_left=lambda: self.time_left() - self._floor,
        )
        self._input_tokens = self._output_tokens = 0
        self._estimated = False

    @property
    def usage(self) -> TokenUsage:
        return TokenUsage(self._input_tokens, self._output_tokens, estimated=self._estimated)

    def spent(self, input_tokens: int, output_tokens: int, *, estimated: bool = False) -> None:
        """Every call paid for comes here (an answer, an estimated silent attempt), before
        anything may raise: the meter then holds it also when the answer fails. `estimated`:
        Tzurot's estimate, not the provider's count (the usage says so from then on)."""
        self._input_tokens += input_tokens
        self._output_tokens += output_tokens
        self._estimated = self._estimated or estimated
        if self.meter is not None:
            self.meter.add(input_tokens, output_tokens, estimated=estimated)

    def time_left(self) -> float:
        return self._deadline - self._clock()

    def ran_out(self) -> bool:
        """Whether the deadline passed (a timer may fire a hair before the clock reads it)."""
        return self.time_left() < TIMER_SLACK_SECONDS

    def fits(self) -> bool:
        """Whether an attempt started now still has its floor of time."""
        return self.time_left() >= self._floor

    def offer(self, tools: ToolOffer | None) -> ToolOffer | None:
        """The round's tools: uncallable (the model answers now) when less than the floor
        is left, as there is no time for a round of skills and one more answer."""
        if tools is None or not tools.callable or self.fits():
            return tools
        return ToolOffer(tools.tools, "none")

    def check_time(self, provider: str) -> None:
        """Raises when the deadline passed: no request is sent only to be abandoned."""
        if self.time_left() <= 0:
            raise _no_answer_in_time(provider)

    def limits(self) -> _Limits:
        left = max(self.time_left(), 0.0)
        return _Limits(
            first_by=self._clock() + min(self._settings.first_event_timeout, left),
            idle=self._settings.idle_timeout,
            request=left,
            clock=self._clock,
            end=self._deadline,
        )

    def retry(self, err: TimeoutError | TzurotError, state: _Attempt) -> float | None:
        """Seconds to wait before asking again after an attempt failed with `err` (a time
        limit, or the provider's error); None: `err` is the outcome."""
        if isinstance(err, TimeoutError):
            return 0.0 if self.retry_after_silence(state) else None
        if isinstance(err, ResourceExhausted | Unavailable):
            return self.retry_wait(err, state)
        return None

    def cost_of(
        self, err: TimeoutError | TzurotError, state: _Attempt, call: ProviderCall, target: _Target
    ) -> Iterator[UsageSpent | RoundsBilled]:
        """What an attempt that failed with `err` was billed, said at once. One the provider
        began answering: billed, its usage never came: estimated apart (UsageSpent). One it
        left silent, timed out before its first event: it read the prompt and may bill it,
        so the prompt is estimated into the usage as for an answer without usage (nothing
        of an answer came), asked again or not, and the meter said (RoundsBilled): a reply
        cancelled from here on counts it too. One refused: billed to nobody."""
        provider = target.provider.name
        if state.started:
            yield broken_off_usage(provider, target.model, call.messages, state.received)
        elif isinstance(err, TimeoutError):
            self.spent(estimate_prompt_tokens(call.messages), 0, estimated=True)
            if self.meter is not None:
                yield RoundsBilled(provider, target.model, self.meter.usage)

    def retry_after_silence(self, state: _Attempt) -> bool:
        """Whether to ask again after an attempt timed out (only one the provider never
        began to answer)."""
        if state.started or self._timeouts == 0 or not self.fits():
            return False
        self._timeouts -= 1
        return True

    def retry_empty(self, finish_reason: str, provider: str) -> None:
        """An empty answer is asked once more; the error when it is not."""
        if finish_reason == "length":  # max_tokens ran out: asked again, it ends the same
            raise _max_tokens_used_up(provider)
        if self._empties == 0 or not self.fits():
            raise Unavailable(
                f"{provider} returned an empty answer twice; try again or choose another model",
                reason="EMPTY_ANSWER",
                metadata={"provider": provider},
            )
        self._empties -= 1

    def retry_wait(self, err: TzurotError, state: _Attempt) -> float | None:
        """Seconds to wait before asking again after `err` (retries.py's policy, the one of
        every provider call); None: not asked again (the provider began answering, no retry
        of the kind is left, or the wait and the next attempt's floor do not fit in the time
        left: a 429 is then reported with its Retry-After)."""
        return self._retries.wait(err, began=state.started, resendable=True)


def _call(  # noqa: PLR0917  # one private call site
    provider: Provider,
    model: str,
    params: AdvancedParameters,
    messages: Sequence[ChatMessage],
    boost: int,
    tools: ToolOffer | None,
) -> ProviderCall:
    """The request, hotter by `boost` steps (asked again after a near-repeat)."""
    call = build_call(
        provider.name,
        model,
        params,
        messages,
        temperature_boost=TEMPERATURE_STEP * boost,
        frequency_boost=FREQUENCY_STEP * boost,
        base_url=provider.base_url,
    )
    if tools is not None and tools.tools:
        call.body["tools"] = list(tools.tools)
        call.body["tool_choice"] = tools.choice
    return call


def _no_answer_in_time(provider: str) -> Unavailable:
    return Unavailable(
        f"{provider} did not answer in time; try again later",
        reason="PROVIDER_TIMEOUT",
        metadata={"provider": provider},
    )


def _out_of_time(provider: str) -> DeadlineExceeded:
    """An answer still coming when the reply's time ran out: cut off, as the caller would cut
    it a moment later, but with the reply's report sent first."""
    return DeadlineExceeded(
        f"the answer from {provider} took too long; try again",
        reason="ANSWER_TIME_LIMIT",
        metadata={"provider": provider},
    )


def _max_tokens_used_up(provider: str) -> InvalidArgument:
    return InvalidArgument(
        f"{FIELD_PREFIX}.max_tokens",
        f"{provider} used up max_tokens before answering (thinking took them all); raise "
        "max_tokens or lower thinking_level (reasoning.effort)",
        reason="MAX_TOKENS_USED_UP",
        metadata={"provider": provider},
    )


async def _paced(
    stream: AsyncGenerator[StreamEvent, None], limits: _Limits, state: _Attempt
) -> AsyncGenerator[StreamEvent, None]:
    """The provider's events; TimeoutError when the first is not there by `limits.first_by`,
    or a later one not within `limits.idle` seconds of the one before, or any past
    `limits.end` (the answer's deadline: a model still answering then is cut off). Only the
    wait for the provider is timed, never the caller's time between events (a timeout around
    a yield would cancel the caller's own await)."""
    async with aclosing(stream):
        while True:
            wait = limits.idle if state.started else limits.first_by - limits.clock()
            wait = min(wait, limits.end - limits.clock())
            try:
                async with asyncio.timeout(max(wait, 0.0)):
                    event = await anext(stream)
            except StopAsyncIteration:
                return
            state.started = True
            yield event


@dataclass(frozen=True)
class _Limits:
    first_by: float
    """The clock's time by which the first event must have come."""
    idle: float
    request: float
    """Each step of the HTTP request (the SDK's timeout): the time left."""
    clock: Callable[[], float]
    end: float = float("inf")
    """The clock's time by which the answer must be done: no event is waited for past it."""


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
    limits: _Limits,
) -> AsyncGenerator[TextDelta | PromptSent, None]:
    """One provider call; streams visible text once the held-back start is safe to show.
    Its PromptSent goes out first, at the provider's first event (of any kind: thinking,
    text, a skill call, a whole answer), when it began answering and so bills the prompt: a
    call refused, or never answered, yields nothing before its error."""
    provider = target.provider
    thinking = ThinkingFilter()
    held = ""
    began = False
    request = llm.stream_chat(
        provider,
        target.api_key,
        model=target.model,
        call=call,
        request_timeout=limits.request,
    )
    stream = _paced(request, limits, state)
    async with aclosing(stream):
        async for event in stream:
            if not began:  # answering now: the prompt is billed
                began = True
                yield prompt_sent(provider.name, target.model, call.messages)
            if isinstance(event, ReasoningDelta):
                state.received.append(event.text)
                continue
            if isinstance(event, ToolCallStarted):
                state.calling = True  # the rest of this response is a skill call, not the answer
                continue
            if isinstance(event, ToolCallText):  # never shown; billed, should the stream break
                state.received.append(event.text)
                continue
            if isinstance(event, Completion):
                state.completion = event
                break
            state.received.append(event.text)
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
