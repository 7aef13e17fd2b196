"""Each request of an answer is announced as it goes out (PromptSent: its prompt's tokens,
estimated as a broken-off round's are), and after each skill round what the rounds were
billed so far (RoundsBilled): a reply cancelled meanwhile can report nothing more, and the
gateway estimates it from these. A request sent again after the provider refused it
unanswered (not billed) is not announced twice; one sent again after a silent attempt (which
the provider may bill) is."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

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
from tzurot.runtime.errors import Unavailable

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


async def test_a_request_sent_again_after_silence_is_announced_again() -> None:
    """The silent attempt read the prompt (it may be billed, and is estimated so)."""
    llm = ScriptedModel([5.0], whole(ANSWER))
    events, raised = await run_answer(llm, UsageMeter())
    assert raised is None
    assert len(llm.calls) == 2
    assert [e for e in events if isinstance(e, PromptSent)] == [announced(MESSAGES)] * 2


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
