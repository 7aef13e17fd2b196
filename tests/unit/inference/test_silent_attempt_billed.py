"""An attempt the provider left silent (no event before first_event_timeout) read the prompt
and may bill it: its prompt is estimated into the answer's usage (the meter) as soon as it is
abandoned, and the meter goes out at once (RoundsBilled), so a reply cancelled during the
retry still counts it; the later report (the answer's usage, or the failed one with
`all_rounds`) carries the same estimate once, superseding it. Before, only the later report
knew of it: a cancel lost it. The last silent attempt, not asked again, is estimated too."""

from __future__ import annotations

import asyncio
import contextlib

from pydantic import SecretStr

from tests.unit.inference.test_broken_off import (
    MESSAGES,
    MODEL,
    PROVIDER,
    Ask,
    Script,
    ScriptedModel,
    run_answer,
    whole,
)
from tzurot.inference.answering import Answer, AnswerSettings, answer
from tzurot.inference.broken_off import prompt_tokens
from tzurot.inference.domain import (
    Completion,
    PaidCall,
    PromptSent,
    RoundsBilled,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallStarted,
    UsageMeter,
    UsageSpent,
)
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import estimate_prompt_tokens
from tzurot.inference.skills.base import SkillContext
from tzurot.inference.skills.loop import LoopResult, LoopSettings, LoopTarget, ToolLoop
from tzurot.inference.skills.registry import ToolSupport
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import TzurotError, Unavailable

QUIET = AnswerSettings(first_event_timeout=0.05, retry_backoff=0.0, min_attempt_seconds=0.0)
ANSWER = "The moon is full and silver over the old harbour tonight, Ann."
SILENT = estimate_prompt_tokens(MESSAGES)
"""A silent attempt's estimate: its prompt, as for an answer without usage."""


NOTHING = TokenUsage(0, 0)


def silent_billed(*silences: int, before: TokenUsage = NOTHING) -> RoundsBilled:
    """The meter said after `silences` silent attempts' prompts (of these sizes), `before`
    what it held already."""
    return RoundsBilled(
        "openrouter",
        MODEL,
        TokenUsage(before.input_tokens + sum(silences), before.output_tokens, estimated=True),
    )


async def test_a_silent_attempt_is_said_billed_before_the_request_is_sent_again() -> None:
    llm = ScriptedModel([5.0], whole(ANSWER))
    meter = UsageMeter()
    events, raised = await run_answer(llm, meter, QUIET)
    assert raised is None
    assert len(llm.calls) == 2
    progress = [e for e in events if isinstance(e, PromptSent | RoundsBilled)]
    # The silent one said billed (its estimate), then the retry announced as it answers.
    assert progress == [
        silent_billed(SILENT),
        PromptSent("openrouter", MODEL, prompt_tokens(MESSAGES, TokenCounter(MODEL))),
    ]
    final = events[-1]
    assert isinstance(final, Answer)
    # Counted once: the answer's usage is the provider's count plus the same estimate.
    assert final.usage == TokenUsage(120 + SILENT, 9, estimated=True)
    assert meter.usage == final.usage
    assert not [e for e in events if isinstance(e, UsageSpent)]  # no broken-off round


async def test_the_billed_rounds_said_are_the_meter_so_far() -> None:
    """The meter already holds an earlier round (300 in / 12 out): the silent attempt's
    RoundsBilled is all of it, as the gateway keeps only the latest."""
    meter = UsageMeter()
    meter.add(300, 12)
    events, raised = await run_answer(ScriptedModel([5.0], whole(ANSWER)), meter, QUIET)
    assert raised is None
    billed = [e for e in events if isinstance(e, RoundsBilled)]
    assert billed == [silent_billed(SILENT, before=TokenUsage(300, 12))]


async def test_every_silent_attempt_is_said_and_the_last_one_counted_in_the_failure() -> None:
    """Silent three times (the first try and two retries): each is estimated as it is
    abandoned, also the last, which is not asked again: the reply's failure carries all
    three, the gateway having had each of them said."""
    llm = ScriptedModel([5.0], [5.0], [5.0])
    meter = UsageMeter()
    events, raised = await run_answer(llm, meter, QUIET)
    assert isinstance(raised, Unavailable)
    assert raised.reason == "PROVIDER_TIMEOUT"
    assert len(llm.calls) == 3
    assert events == [
        silent_billed(SILENT),
        silent_billed(SILENT, SILENT),
        silent_billed(SILENT, SILENT, SILENT),
    ]
    assert meter.usage == TokenUsage(3 * SILENT, 0, estimated=True)


async def test_without_a_meter_a_silent_attempt_is_in_the_answer_s_usage_only() -> None:
    """No meter, no rounds to say: answer()'s own usage still carries the estimate."""
    llm = ScriptedModel([5.0], whole(ANSWER))
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
        settings=QUIET,
    )
    events = [event async for event in stream]
    assert not [e for e in events if isinstance(e, RoundsBilled)]
    final = events[-1]
    assert isinstance(final, Answer)
    assert final.usage == TokenUsage(120 + SILENT, 9, estimated=True)


def loop_and_target(llm: ScriptedModel) -> tuple[ToolLoop, LoopTarget]:
    loop = ToolLoop(
        skills=[Ask()],
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
        settings=QUIET,
    )
    return loop, target


async def test_the_loop_says_it_at_once_while_a_round_s_text_is_held() -> None:
    """Tools are offered (text held back while the round may become skill calls): the
    silent attempt's RoundsBilled is not held with it. A cancel during the retry, which is
    slow to answer, has had it."""
    slow: Script = [TextDelta("The moon "), 30.0]
    loop, target = loop_and_target(ScriptedModel([5.0], slow))
    seen: list[object] = []
    events = loop.run(target, MESSAGES)

    async def read() -> None:
        async for event in events:
            seen.append(event)

    task = asyncio.create_task(read())
    for _ in range(200):
        if any(isinstance(e, PromptSent) for e in seen):
            break
        await asyncio.sleep(0.01)
    task.cancel()  # the client went away during the retry
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert seen[0] == silent_billed(estimate_prompt_tokens(MESSAGES))
    assert isinstance(seen[1], PromptSent)
    assert not [e for e in seen if isinstance(e, TextDelta)]  # held, never said


async def test_a_failed_reply_reports_the_silent_attempts_once_with_its_rounds() -> None:
    """Round 1 calls a skill (300 in / 12 out); round 2 is silent three times: each said as
    it is abandoned, then the failure's report of all rounds carries them with round 1."""
    call = ToolCall(id="call_1", name="sketch", arguments="{}")
    round_1: Script = [
        ToolCallStarted(),
        Completion("", TokenUsage(300, 12), "tool_calls", tool_calls=(call,)),
    ]
    llm = ScriptedModel(round_1, [5.0], [5.0], [5.0])
    loop, target = loop_and_target(llm)
    seen: list[object] = []
    raised: BaseException | None = None
    try:
        async for event in loop.run(target, MESSAGES):
            seen.append(event)
    except TzurotError as err:
        raised = err
    assert isinstance(raised, Unavailable)
    second = estimate_prompt_tokens(llm.calls[1])
    billed = [e for e in seen if isinstance(e, RoundsBilled)]
    assert billed == [
        RoundsBilled("openrouter", MODEL, TokenUsage(300, 12)),
        silent_billed(second, before=TokenUsage(300, 12)),
        silent_billed(second, second, before=TokenUsage(300, 12)),
        silent_billed(second, second, second, before=TokenUsage(300, 12)),
    ]
    report = seen[-1]
    usage = TokenUsage(300 + 3 * second, 12, estimated=True)
    assert report == UsageSpent(
        (PaidCall("", "openrouter", MODEL, usage, estimated=True),), failed=True, all_rounds=True
    )
    assert not [e for e in seen if isinstance(e, LoopResult)]
