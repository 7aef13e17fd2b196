"""A round the provider broke off once it began answering was billed, and its usage chunk
never came: it is estimated (the prompt sent, the text and reasoning received, with the
model's tokenizer) and reported at once as UsageSpent (failed, estimated), before the error,
or before the answer that still finishes the reply; never in the meter nor the answer's
usage. A silent attempt (nothing received) is not such a round."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest
from pydantic import SecretStr

from tests.unit.inference.fake_models import UnusedModel
from tzurot.inference.answering import Answer, AnswerSettings, answer
from tzurot.inference.broken_off import broken_off_usage, prompt_tokens
from tzurot.inference.dialects import ProviderCall
from tzurot.inference.domain import (
    Completion,
    GeneratedFile,
    PaidCall,
    PromptSent,
    ReasoningDelta,
    RoundsBilled,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallStarted,
    UsageMeter,
    UsageSpent,
)
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.skills.base import SkillContext, SkillOutput
from tzurot.inference.skills.loop import LoopResult, LoopSettings, LoopTarget, ToolLoop
from tzurot.inference.skills.registry import ToolSupport
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import ResourceExhausted, TzurotError, Unavailable

PROVIDER = ProviderRegistry({"openrouter": "http://127.0.0.1:9"}).get("openrouter")
MODEL = "anthropic/claude-sonnet-4.5"
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "You are Lilith, who speaks of the night sky."},
    {"role": "user", "content": "Ann: what is the moon like tonight?"},
]
THOUGHT = "She asks about the moon; I should describe it."
SAID = ["The moon ", "is full ", "and silver ", "over the ", "old harbour"]
DROPPED = Unavailable(
    "openrouter dropped the answer before finishing it; try again later",
    reason="PROVIDER_UNAVAILABLE",
)
SETTINGS = AnswerSettings(
    first_event_timeout=1.0, idle_timeout=0.05, retry_backoff=0.0, min_attempt_seconds=0.0
)

Script = Sequence[StreamEvent | BaseException | float]
"""A call's events in order: an exception is raised there, a float is a silence that long."""


class ScriptedModel(UnusedModel):
    """A provider whose each call plays the next script."""

    def __init__(self, *scripts: Script) -> None:
        self.scripts = list(scripts)
        self.calls: list[list[ChatMessage]] = []

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
        self.calls.append(list(call.messages))
        for step in self.scripts.pop(0):
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, float):
                await asyncio.sleep(step)
                continue
            yield step


def broke_after_answering(error: BaseException | float) -> Script:
    """Reasoning, five pieces of the answer, then `error` (or a silence past idle_timeout)."""
    return [ReasoningDelta(THOUGHT), *(TextDelta(piece) for piece in SAID), error]


def whole(text: str) -> Script:
    return [TextDelta(text), Completion(text, TokenUsage(120, 9), "stop")]


def expected_estimate(messages: Sequence[ChatMessage] = MESSAGES) -> UsageSpent:
    counter = TokenCounter(MODEL)
    usage = TokenUsage(prompt_tokens(messages, counter), counter.count(THOUGHT + "".join(SAID)))
    return UsageSpent((PaidCall("", "openrouter", MODEL, usage, estimated=True),), failed=True)


async def run_answer(
    llm: ScriptedModel, meter: UsageMeter, settings: AnswerSettings = SETTINGS
) -> tuple[list[TextDelta | UsageSpent | PromptSent | RoundsBilled | Answer], BaseException | None]:
    events: list[TextDelta | UsageSpent | PromptSent | RoundsBilled | Answer] = []
    stream = answer(
        llm,
        PROVIDER,
        SecretStr("sk-or-test"),
        model=MODEL,
        params=parse_advanced_parameters(None),
        messages=MESSAGES,
        name="Lilith",
        recent=(),
        rules=(),
        settings=settings,
        meter=meter,
    )
    try:
        async for event in stream:
            events.append(event)
    except TzurotError as err:
        return events, err
    return events, None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (DROPPED, "PROVIDER_UNAVAILABLE"),  # the connection dropped mid-answer
        (0.5, "PROVIDER_TIMEOUT"),  # it went idle past idle_timeout
        (  # an error event mid-answer (OpenRouter's, upstream 402)
            ResourceExhausted("no credit left", reason="PROVIDER_QUOTA_EXCEEDED"),
            "PROVIDER_QUOTA_EXCEEDED",
        ),
    ],
)
async def test_a_round_broken_off_mid_answer_is_estimated_before_its_error(
    error: BaseException | float, reason: str
) -> None:
    meter = UsageMeter()
    events, raised = await run_answer(ScriptedModel(broke_after_answering(error)), meter)
    assert isinstance(raised, TzurotError)
    assert raised.reason == reason
    spent = events[-1]  # the last word before the error
    assert spent == expected_estimate()
    assert isinstance(spent, UsageSpent)
    (paid,) = spent.paid
    assert paid.usage.input_tokens > 0
    assert paid.usage.output_tokens > 0
    assert not meter  # estimated apart: never reported again with the answer's own calls


async def test_the_estimate_counts_the_prompt_sent_and_what_came() -> None:
    """Text parts and their overhead, an image part as the budget counts it, a skill call's
    name and arguments; the output with the model's tokenizer."""
    counter = TokenCounter(MODEL)
    messages: list[ChatMessage] = [
        {"role": "system", "content": "You are Lilith."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Ann: look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "function": {"name": "memory_search", "arguments": '{"q":"moon"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "the moon was full last week"},
    ]
    spent = broken_off_usage("openrouter", MODEL, messages, ["Half ", "an answer"])
    (paid,) = spent.paid
    assert paid.usage.input_tokens == (
        counter.count_message("You are Lilith.")
        + counter.count_message("Ann: look")
        + 1105
        + counter.count_message("")
        + counter.count('memory_search{"q":"moon"}')
        + counter.count_message("the moon was full last week")
    )
    assert paid.usage.output_tokens == counter.count("Half an answer")
    assert (paid.estimated, paid.request_type, spent.failed) == (True, "", True)


async def test_a_silent_attempt_is_asked_again_without_a_broken_off_estimate() -> None:
    """Nothing came (the first event timed out): asked again, its prompt in the answer's
    usage as before, and no round reported broken off."""
    quiet = AnswerSettings(first_event_timeout=0.05, retry_backoff=0.0, min_attempt_seconds=0.0)
    llm = ScriptedModel([5.0], whole("The moon is full tonight, and very bright indeed."))
    meter = UsageMeter()
    events, raised = await run_answer(llm, meter, quiet)
    assert raised is None
    assert not [e for e in events if isinstance(e, UsageSpent)]
    final = events[-1]
    assert isinstance(final, Answer)
    assert final.usage.input_tokens > 120  # the silent prompt estimated in, as before
    assert final.usage.estimated  # and marked so
    assert meter.usage.estimated
    assert len(llm.calls) == 2


class Ask:
    """A skill that makes nothing."""

    name = "sketch"
    description = "Asks around."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    stealth = False
    auto_memorize = False
    timeout = 5.0
    min_seconds = 0.0

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        return SkillOutput(text="nobody knows")


class Sketch:
    """A skill that makes one small file (so a failed last round still delivers it)."""

    name = "sketch"
    description = "Draws a sketch."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    stealth = False
    auto_memorize = False
    timeout = 5.0
    min_seconds = 0.0
    file_bytes = 1000

    def most_files(self, args: Mapping[str, Any]) -> int:
        return 1

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        return SkillOutput(text="drawn", files=(GeneratedFile("moon.png", "image/png", b"png"),))


def calls_sketch() -> Script:
    call = ToolCall(id="call_1", name="sketch", arguments="{}")
    usage = TokenUsage(300, 12)
    return [ToolCallStarted(), Completion("", usage, "tool_calls", tool_calls=(call,))]


async def run_loop(
    llm: ScriptedModel, skill: Ask | Sketch
) -> tuple[list[object], BaseException | None]:
    loop = ToolLoop(
        skills=[skill],
        ctx=SkillContext(user_id="u-1", personality_id="p-1"),
        settings=LoopSettings(),
        support=ToolSupport(),
        counter=TokenCounter(MODEL),
    )
    target = LoopTarget(
        llm=llm,
        provider=PROVIDER,
        api_key=SecretStr("sk-or-test"),
        model=MODEL,
        params=parse_advanced_parameters(None),
        name="Lilith",
        recent=(),
        rules=(),
        settings=SETTINGS,
    )
    events: list[object] = []
    try:
        async for event in loop.run(target, MESSAGES):
            events.append(event)
    except TzurotError as err:
        return events, err
    return events, None


async def test_a_later_round_broken_off_is_reported_apart_from_the_rounds_paid_before() -> None:
    """Round 1 (skill calls) paid with the provider's count; round 2 broke mid-answer: its
    estimate goes out as it broke, then round 1's count (failed, not estimated), then the
    error. Nothing counted twice."""
    llm = ScriptedModel(calls_sketch(), broke_after_answering(DROPPED))
    events, raised = await run_loop(llm, Ask())
    assert isinstance(raised, Unavailable)
    spent = [e for e in events if isinstance(e, UsageSpent)]
    assert spent == [
        expected_estimate(llm.calls[1]),
        UsageSpent(
            (PaidCall("", "openrouter", MODEL, TokenUsage(300, 12)),), failed=True, all_rounds=True
        ),
    ]


async def test_a_failed_reply_s_rounds_are_marked_estimated_when_one_was() -> None:
    """Round 1's provider sent no usage chunk (its tokens estimated); round 2 broke off: the
    failed report of the rounds paid says it holds an estimate."""
    call = ToolCall(id="call_1", name="sketch", arguments="{}")
    guessed = TokenUsage(300, 12, estimated=True)
    round_1: Script = [
        ToolCallStarted(),
        Completion("", guessed, "tool_calls", tool_calls=(call,)),
    ]
    llm = ScriptedModel(round_1, broke_after_answering(DROPPED))
    events, raised = await run_loop(llm, Ask())
    assert isinstance(raised, Unavailable)
    *_, rounds = [e for e in events if isinstance(e, UsageSpent)]
    assert rounds == UsageSpent(
        (PaidCall("", "openrouter", MODEL, guessed, estimated=True),), failed=True, all_rounds=True
    )


async def test_a_reply_that_still_finishes_reports_the_broken_round_and_its_own_usage() -> None:
    """A file was made, then the last round broke off: the reply still finishes (the file
    with a note). The broken round's estimate went out before the result, and the result's
    usage carries only the provider's counts (round 1)."""
    llm = ScriptedModel(calls_sketch(), broke_after_answering(DROPPED))
    events, raised = await run_loop(llm, Sketch())
    assert raised is None
    *before, result = events
    assert isinstance(result, LoopResult)
    assert [e for e in before if isinstance(e, UsageSpent)] == [expected_estimate(llm.calls[1])]
    assert result.usage == TokenUsage(300, 12)
    assert len(result.files) == 1
    assert result.answer.content.startswith("*The answer could not be finished (")
