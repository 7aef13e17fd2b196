"""One answer assembled from parsed chat-completion chunks (OpenAI's streaming format)."""

from __future__ import annotations

from typing import Any

from tzurot.inference.chunks import AnswerAssembly
from tzurot.inference.domain import (
    Completion,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallStarted,
    ToolCallText,
)
from tzurot.inference.prompt import ChatMessage

MESSAGES: list[ChatMessage] = [{"role": "user", "content": "Ann: hello there"}]


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"object": "chat.completion.chunk", "choices": [choice], "usage": None}


def take_all(assembly: AnswerAssembly, chunks: list[dict[str, Any]]) -> list[StreamEvent]:
    return [event for c in chunks for event in assembly.take(c)]


def test_text_reasoning_finish_and_usage() -> None:
    assembly = AnswerAssembly()
    events = take_all(
        assembly,
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": None, "reasoning": "let me see"}),
            chunk({"content": None, "reasoning_content": ", yes"}),
            chunk({"content": "Hello"}),
            chunk({"content": " Ann."}),
            chunk({}, "stop"),
            {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}},
        ],
    )
    assert events == [
        ReasoningDelta("let me see"),
        ReasoningDelta(", yes"),
        TextDelta("Hello"),
        TextDelta(" Ann."),
    ]
    assert assembly.completion(MESSAGES) == Completion(
        content="Hello Ann.",
        usage=TokenUsage(input_tokens=12, output_tokens=3),
        finish_reason="stop",
        reasoning="let me see, yes",
    )


def test_usage_is_estimated_when_the_provider_sends_none() -> None:
    assembly = AnswerAssembly()
    take_all(assembly, [chunk({"content": "12345678"}), chunk({}, "stop")])
    # ceil(len/4): "Ann: hello there" is 16 characters, the answer 8.
    # Marked Tzurot's estimate, as far as the usage row (Usage.estimated).
    assert assembly.completion(MESSAGES).usage == TokenUsage(
        input_tokens=4, output_tokens=2, estimated=True
    )


def test_an_estimate_counts_reasoning_and_tool_calls_as_output() -> None:
    """No usage chunk: the output estimated is all the provider generated (and bills): the
    text, the reasoning, each tool call's name and arguments."""
    assembly = AnswerAssembly()
    call = {"index": 0, "id": "c", "function": {"name": "clock", "arguments": '{"tz":"UTC"}'}}
    take_all(
        assembly,
        [
            chunk({"reasoning": "what time is it"}),
            chunk({"content": "Let me see."}),
            chunk({"tool_calls": [call]}),
            chunk({}, "tool_calls"),
        ],
    )
    said = "Let me see." + "what time is it" + 'clock{"tz":"UTC"}'
    usage = assembly.completion(MESSAGES).usage
    assert usage == TokenUsage(input_tokens=4, output_tokens=-(-len(said) // 4), estimated=True)


def test_the_provider_s_own_usage_is_not_an_estimate() -> None:
    assembly = AnswerAssembly()
    usage = {"prompt_tokens": 12, "completion_tokens": 3}
    take_all(assembly, [chunk({"content": "hi"}, "stop"), {"choices": [], "usage": usage}])
    assert not assembly.completion(MESSAGES).usage.estimated


def test_tool_calls_assembled_by_index_with_one_start_each() -> None:
    assembly = AnswerAssembly()
    first = {"index": 0, "id": "call_a", "type": "function"}
    second = {"index": 1, "id": "call_b", "type": "function"}
    events = take_all(
        assembly,
        [
            chunk({"content": "Let me look."}),
            chunk({"tool_calls": [{**first, "function": {"name": "read_url", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"url": '}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"https://x"}'}}]}),
            chunk({"tool_calls": [{**second, "function": {"name": "clock", "arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
        ],
    )
    # Each call's start, and its text as it streams (never shown; billed output).
    assert events == [
        TextDelta("Let me look."),
        ToolCallStarted(),
        ToolCallText("read_url"),
        ToolCallText('{"url": '),
        ToolCallText('"https://x"}'),
        ToolCallStarted(),
        ToolCallText("clock{}"),
    ]
    done = assembly.completion(MESSAGES)
    assert done.finish_reason == "tool_calls"
    assert done.tool_calls == (
        ToolCall(id="call_a", name="read_url", arguments='{"url": "https://x"}'),
        ToolCall(id="call_b", name="clock", arguments="{}"),
    )


def test_a_call_without_an_id_gets_one_from_its_index() -> None:
    assembly = AnswerAssembly()
    assembly.take(chunk({"tool_calls": [{"index": 2, "function": {"name": "clock"}}]}))
    assert assembly.completion(MESSAGES).tool_calls == (
        ToolCall(id="call_2", name="clock", arguments=""),
    )


def test_fields_of_the_wrong_type_are_ignored() -> None:
    assembly = AnswerAssembly()
    events = take_all(
        assembly,
        [
            {"choices": None},
            {"choices": ["not an object"]},
            chunk({"content": 7, "reasoning": ["x"], "tool_calls": "no"}),
            chunk({"tool_calls": ["no", {"index": "0", "function": {"name": 3}}]}),
            {"choices": [{"delta": "no", "finish_reason": 5}]},
            {"choices": [], "usage": {"prompt_tokens": "9", "completion_tokens": True}},
            chunk({"content": "ok"}, "stop"),
        ],
    )
    assert events == [ToolCallStarted(), TextDelta("ok")]
    done = assembly.completion(MESSAGES)
    assert (done.content, done.finish_reason) == ("ok", "stop")
    assert done.usage == TokenUsage(input_tokens=0, output_tokens=0)
    assert done.tool_calls == (ToolCall(id="call_0", name="", arguments=""),)


def test_calls_without_an_index_are_told_apart_by_their_ids() -> None:
    """Gemini's OpenAI-compatible stream: each call whole, no index; a new id is a new call.
    Pieces without an id (arguments, a metadata-only delta) continue the call before them."""
    signature = {"google": {"thought_signature": "c2lnbmVk"}}
    assembly = AnswerAssembly()
    events = take_all(
        assembly,
        [
            chunk(
                {
                    "tool_calls": [
                        {
                            "id": "function-call-1",
                            "type": "function",
                            "function": {"name": "web_research", "arguments": '{"q":"Paris"}'},
                            "extra_content": signature,
                        }
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {
                            "id": "function-call-2",
                            "type": "function",
                            "function": {"name": "web_research", "arguments": '{"q":'},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"function": {"arguments": '"Rome"}'}}]}),
            chunk({"tool_calls": [{"extra_content": {"google": {"note": "x"}}}]}),
            chunk({}, "stop"),
        ],
    )
    assert events == [
        ToolCallStarted(),
        ToolCallText('web_research{"q":"Paris"}'),
        ToolCallStarted(),
        ToolCallText('web_research{"q":'),
        ToolCallText('"Rome"}'),
    ]
    assert assembly.completion(MESSAGES).tool_calls == (
        ToolCall("function-call-1", "web_research", '{"q":"Paris"}', extra_content=signature),
        ToolCall(
            "function-call-2",
            "web_research",
            '{"q":"Rome"}',
            extra_content={"google": {"note": "x"}},
        ),
    )


def test_an_indexed_call_repeating_its_id_stays_one_call() -> None:
    assembly = AnswerAssembly()
    head = {"index": 0, "id": "call_a", "function": {"name": "clock", "arguments": "{"}}
    take_all(
        assembly,
        [
            chunk({"tool_calls": [head]}),
            chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"arguments": "}"}}]}),
        ],
    )
    assert assembly.completion(MESSAGES).tool_calls == (ToolCall("call_a", "clock", "{}"),)
