"""Each request of an answer is announced once the provider began answering it, at the
attempt's first streamed event (PromptSent: its prompt's tokens, estimated as a broken-off
round's are), and after each skill round what the rounds were billed so far (RoundsBilled): a
reply cancelled meanwhile can report nothing more, and the gateway estimates it from these.

Never as the request goes out: one the provider refused before any event (a 401, 403, 400,
429, 5xx) was billed to nobody, and 80c27e3, which announced each request as it was sent,
left such a refusal counted (the gateway then wrote a usage row for a call nobody paid). A
silent attempt is not announced either: it is estimated into the answer's own usage."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import SecretStr

from tests.unit.inference.test_broken_off import (
    MESSAGES,
    MODEL,
    PROVIDER,
    SETTINGS,
    Ask,
    ScriptedModel,
    calls_sketch,
    run_answer,
    run_loop,
    whole,
)
from tzurot.inference.answering import answer
from tzurot.inference.broken_off import prompt_tokens
from tzurot.inference.domain import (
    PromptSent,
    ReasoningDelta,
    RoundsBilled,
    SkillActivity,
    TokenUsage,
    UsageMeter,
    UsageSpent,
)
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.skills.base import SkillContext, SkillOutput
from tzurot.inference.skills.loop import LoopResult, LoopSettings, LoopTarget, ToolLoop
from tzurot.inference.skills.registry import ToolSupport
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import (
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    TzurotError,
    Unauthenticated,
    Unavailable,
)

ANSWER = "The moon is full and silver over the old harbour tonight, Ann."


def announced(messages: object) -> PromptSent:
    return PromptSent("openrouter", MODEL, prompt_tokens(messages, TokenCounter(MODEL)))  # type: ignore[arg-type]  # a prompt's messages


async def test_a_request_is_announced_before_its_answer() -> None:
    llm = ScriptedModel(whole(ANSWER))
    events, raised = await run_answer(llm, UsageMeter())
    assert raised is None
    sent, *rest = events
    assert sent == announced(MESSAGES)
    assert isinstance(sent, PromptSent)
    assert sent.input_tokens > 0
    assert not [e for e in rest if isinstance(e, PromptSent)]


async def test_a_request_sent_again_after_a_refusal_is_announced_once() -> None:
    refused = Unavailable("openrouter is down", reason="PROVIDER_UNAVAILABLE")
    llm = ScriptedModel([refused], whole(ANSWER))
    events, raised = await run_answer(llm, UsageMeter())
    assert raised is None
    assert len(llm.calls) == 2
    assert [e for e in events if isinstance(e, PromptSent)] == [announced(MESSAGES)]


async def test_a_silent_attempt_is_not_announced_the_one_answered_is() -> None:
    """The silent attempt (no event before first_event_timeout) is estimated into the
    answer's usage, not announced; the request sent again is, when it begins answering."""
    llm = ScriptedModel([5.0], whole(ANSWER))
    meter = UsageMeter()
    events, raised = await run_answer(llm, meter)
    assert raised is None
    assert len(llm.calls) == 2
    assert [e for e in events if isinstance(e, PromptSent)] == [announced(MESSAGES)]
    assert meter.estimated  # the silent attempt, in the answer's usage


REFUSALS = [
    pytest.param(
        Unauthenticated("the key was rejected by openrouter", reason="PROVIDER_AUTH_FAILED"),
        id="401",
    ),
    pytest.param(
        PermissionDenied("openrouter refused the key", reason="PROVIDER_AUTH_FAILED"), id="403"
    ),
    pytest.param(
        InvalidArgument("advanced_parameters", "bad request", reason="PROVIDER_REJECTED"),
        id="400",
    ),
    pytest.param(ResourceExhausted("rate limited", reason="PROVIDER_RATE_LIMITED"), id="429"),
    pytest.param(Unavailable("openrouter is down", reason="PROVIDER_UNAVAILABLE"), id="5xx"),
]


@pytest.mark.parametrize("refusal", REFUSALS)
async def test_a_request_refused_before_its_first_event_is_never_announced(
    refusal: TzurotError,
) -> None:
    """Refused each time it is asked (a 429 and a 5xx are asked again): nobody billed any of
    these requests, so nothing is announced, and the reply fails with the refusal."""
    llm = ScriptedModel(*([refusal],) * 5)
    events, raised = await run_answer(llm, UsageMeter())
    assert raised is refusal
    assert llm.calls  # sent, and refused
    assert not [e for e in events if isinstance(e, PromptSent)]


async def test_a_refused_request_then_a_cancel_announces_nothing() -> None:
    """The provider refuses the first request (a 503, asked again); the second is sent and
    the reply is cancelled before its first event: nothing was billed, and nothing announced
    (80c27e3 had announced the refused request, and the gateway counted it)."""
    refused = Unavailable("openrouter is down", reason="PROVIDER_UNAVAILABLE")
    llm = ScriptedModel([refused], [0.5, *whole(ANSWER)])
    seen: list[object] = []

    async def consume() -> None:
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
            settings=SETTINGS,
            meter=UsageMeter(),
        )
        async for event in stream:
            seen.append(event)

    task = asyncio.create_task(consume())
    for _ in range(100):
        if len(llm.calls) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(llm.calls) == 2  # the request sent again, not answered yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [e for e in seen if isinstance(e, PromptSent)]


async def test_a_request_is_announced_at_its_first_event_not_before() -> None:
    """The provider is slow to begin (0.3 s): nothing is announced while it is silent; its
    first event (thinking) brings the announcement, before anything of the answer."""
    llm = ScriptedModel([0.3, ReasoningDelta("hmm"), *whole(ANSWER)])
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
        settings=SETTINGS,
    )
    first = asyncio.ensure_future(anext(stream))
    done, _ = await asyncio.wait({first}, timeout=0.1)
    assert not done  # sent, silent: not announced
    assert len(llm.calls) == 1
    assert await first == announced(MESSAGES)
    rest = [event async for event in stream]
    assert not [e for e in rest if isinstance(e, PromptSent)]


async def test_each_round_is_announced_and_a_skill_round_reported_billed() -> None:
    """Round 1 calls a skill (300 in / 12 out), round 2 answers: each request is announced
    (round 2's with the skill's result, longer); round 1's bill goes out before its skill
    runs; the result's usage is the rounds' whole, so nothing is counted twice."""
    llm = ScriptedModel(calls_sketch(), whole(ANSWER))
    events, raised = await run_loop(llm, Ask())
    assert raised is None
    progress = [e for e in events if isinstance(e, PromptSent | RoundsBilled)]
    assert progress == [
        announced(llm.calls[0]),
        RoundsBilled("openrouter", MODEL, TokenUsage(300, 12)),
        announced(llm.calls[1]),
    ]
    first, _, second = progress
    assert isinstance(first, PromptSent)
    assert isinstance(second, PromptSent)
    assert 0 < first.input_tokens < second.input_tokens
    billed = events.index(progress[1])
    assert billed < next(i for i, e in enumerate(events) if isinstance(e, SkillActivity))
    result = events[-1]
    assert isinstance(result, LoopResult)
    assert result.usage == TokenUsage(420, 21)


async def test_a_plain_answer_sends_no_rounds_billed() -> None:
    llm = ScriptedModel(whole(ANSWER))
    events, raised = await run_loop(llm, Ask())
    assert raised is None
    assert not [e for e in events if isinstance(e, RoundsBilled | UsageSpent)]


async def test_a_cancel_while_a_skill_runs_has_had_the_round_s_bill() -> None:
    """Review 140's case: round 1 paid, the skill slow, the client gone while it runs. The
    round's prompt and its provider's count went out before the skill started."""

    class SlowAsk(Ask):
        async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
            await asyncio.sleep(30)  # an image model at work
            return SkillOutput(text="too late")

    loop = ToolLoop(
        skills=[SlowAsk()],
        ctx=SkillContext(user_id="u-1", personality_id="p-1"),
        settings=LoopSettings(),
        support=ToolSupport(),
        counter=TokenCounter(MODEL),
    )
    llm = ScriptedModel(calls_sketch())
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
    seen: list[object] = []
    events = loop.run(target, MESSAGES)
    async for event in events:
        seen.append(event)
        if isinstance(event, SkillActivity):
            break
    await events.aclose()
    assert seen[:2] == [
        announced(MESSAGES),
        RoundsBilled("openrouter", MODEL, TokenUsage(300, 12)),
    ]


async def test_a_request_is_announced_also_without_a_meter() -> None:
    stream = answer(
        ScriptedModel(whole(ANSWER)),
        PROVIDER,
        SecretStr("sk-or-test"),
        model=MODEL,
        params=parse_advanced_parameters(None),
        messages=MESSAGES,
        name="Lilith",
        recent=(),
        rules=(),
        settings=SETTINGS,
    )
    events = [event async for event in stream]
    assert events[0] == announced(MESSAGES)
