"""A round the provider broke off while the model streamed a tool call (its name and part of
its arguments) was billed for that output too: the round's estimate counts the call's
streamed text as output, as it counts text and reasoning. Before, a call's arguments never
reached answer() (only ToolCallStarted did), so the estimate left them out."""

from __future__ import annotations

from tests.unit.inference.test_broken_off import (
    DROPPED,
    MESSAGES,
    MODEL,
    Script,
    ScriptedModel,
    run_answer,
)
from tzurot.inference.broken_off import prompt_tokens
from tzurot.inference.domain import (
    PaidCall,
    TextDelta,
    TokenUsage,
    ToolCallStarted,
    ToolCallText,
    UsageMeter,
    UsageSpent,
)
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import Unavailable

ARGUMENT_PIECES = ['{"prompt": "a full moon ', "over the old harbour, ", "silver light on"]


async def test_a_round_broken_mid_tool_call_counts_the_call_s_streamed_text() -> None:
    script: Script = [
        TextDelta("Let me draw it. "),
        ToolCallStarted(),
        ToolCallText("generate_image"),
        *(ToolCallText(piece) for piece in ARGUMENT_PIECES),
        DROPPED,
    ]
    meter = UsageMeter()
    events, raised = await run_answer(ScriptedModel(script), meter)
    assert isinstance(raised, Unavailable)
    counter = TokenCounter(MODEL)
    output = counter.count("Let me draw it. generate_image" + "".join(ARGUMENT_PIECES))
    assert output > counter.count("Let me draw it. ")
    usage = TokenUsage(prompt_tokens(MESSAGES, counter), output)
    assert events[-1] == UsageSpent(
        (PaidCall("", "openrouter", MODEL, usage, estimated=True),), failed=True
    )
    assert not meter  # estimated apart, as any broken round


async def test_a_tool_call_s_text_is_never_shown() -> None:
    """The call's text only counts: no delta of it reaches the client."""
    script: Script = [
        ToolCallStarted(),
        ToolCallText("generate_image"),
        ToolCallText('{"p'),
        DROPPED,
    ]
    events, _ = await run_answer(ScriptedModel(script), UsageMeter())
    assert not [e for e in events if isinstance(e, TextDelta)]
