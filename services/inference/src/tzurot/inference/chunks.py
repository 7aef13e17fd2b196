"""One answer assembled from the parsed chunks of a streamed chat completion.

Each chunk is the JSON object a provider sent (OpenAI's `chat.completion.chunk`): the first
choice's `delta` carries text (`content`), thinking (`reasoning` / `reasoning_content`) and
tool-call pieces; `finish_reason` and `usage` arrive near the end. Fields of the wrong type
are ignored, as the SDK's lenient models did.

Tool-call deltas are joined by `index` (OpenAI); their text (names, pieces of arguments) is
streamed too (ToolCallText), never shown: output billed, which a broken round's estimate
counts. Gemini's OpenAI-compatible endpoint sends
none: each call arrives whole, with its own id, so a delta without an index continues the
last call unless it brings a new id, which starts the next one. A call's `extra_content`
(Gemini's thought signature, possibly in a delta of its own) is kept to be echoed back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from tzurot.inference.prompt import ChatMessage, estimate_prompt_tokens, estimate_tokens

REASONING_FIELDS = ("reasoning", "reasoning_content")
"""Where providers stream thinking apart from the answer (OpenRouter; DeepSeek, vLLM)."""


class ToolCalls:
    """Tool calls assembled from streamed deltas, by index (OpenAI's streaming format), or by
    id where deltas carry no index (Gemini)."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}
        self._last: int | None = None
        """The slot the latest delta went to: where an index-less delta continues."""

    def feed(self, deltas: Sequence[object]) -> tuple[bool, str]:
        """Adds a chunk's tool-call deltas: whether a new call began, and the text they
        brought (names and pieces of arguments, output the provider bills)."""
        began = False
        text: list[str] = []
        for delta in deltas:
            if not isinstance(delta, dict):
                continue
            call_id = _text(delta.get("id"))
            index = delta.get("index")
            if not isinstance(index, int):
                index = self._slot_without_index(call_id)
            slot = self._calls.get(index)
            if slot is None:
                slot = self._calls[index] = {"id": "", "name": "", "arguments": [], "extra": {}}
                began = True
            self._last = index
            if call_id:
                slot["id"] = call_id
            extra = delta.get("extra_content")
            if isinstance(extra, dict):
                _merge(slot["extra"], extra)
            function = delta.get("function")
            if isinstance(function, dict):
                name = _text(function.get("name"))
                slot["name"] += name
                arguments = _text(function.get("arguments"))
                if arguments:
                    slot["arguments"].append(arguments)
                text += (name, arguments)
        return began, "".join(text)

    def _slot_without_index(self, call_id: str) -> int:
        """The last call's slot, or a new one when `call_id` is new (another call began)."""
        last = self._calls.get(self._last) if self._last is not None else None
        if last is None or (call_id and last["id"] and call_id != last["id"]):
            return max(self._calls, default=-1) + 1
        assert self._last is not None
        return self._last

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(
                id=slot["id"] or f"call_{index}",
                name=slot["name"],
                arguments="".join(slot["arguments"]),
                extra_content=slot["extra"] or None,
            )
            for index, slot in sorted(self._calls.items())
        )


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    """`extra` into `into`, one level deep (`{"google": {...}}` pieces join)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


class AnswerAssembly:
    """Feed it each chunk in order (`take` returns what to stream); then `completion`."""

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._thoughts: list[str] = []
        self._usage: TokenUsage | None = None
        self._finish_reason = ""
        self._tool_calls = ToolCalls()

    def take(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = TokenUsage(
                input_tokens=_count(usage.get("prompt_tokens")),
                output_tokens=_count(usage.get("completion_tokens")),
            )
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return []
        events: list[StreamEvent] = []
        delta = choice.get("delta")
        if isinstance(delta, dict):
            thought = _reasoning(delta)
            if thought:
                self._thoughts.append(thought)
                events.append(ReasoningDelta(thought))
            text = _text(delta.get("content"))
            if text:
                self._pieces.append(text)
                events.append(TextDelta(text))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                began, said = self._tool_calls.feed(calls)
                if began:
                    events.append(ToolCallStarted())
                if said:
                    events.append(ToolCallText(said))
        finish_reason = _text(choice.get("finish_reason"))
        if finish_reason:
            self._finish_reason = finish_reason
        return events

    def completion(self, messages: Sequence[ChatMessage]) -> Completion:
        """The whole answer; usage estimated when the provider sent none (the output: the
        text, the reasoning and the tool calls' names and arguments, all billed)."""
        content, reasoning = "".join(self._pieces), "".join(self._thoughts)
        calls = self._tool_calls.calls()
        output = content + reasoning + "".join(f"{c.name}{c.arguments}" for c in calls)
        usage = self._usage or TokenUsage(
            estimate_prompt_tokens(messages), estimate_tokens(output), estimated=True
        )
        return Completion(
            content=content,
            usage=usage,
            finish_reason=self._finish_reason,
            reasoning=reasoning,
            tool_calls=calls,
        )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _reasoning(delta: dict[str, Any]) -> str:
    for name in REASONING_FIELDS:
        value = delta.get(name)
        if isinstance(value, str) and value:
            return value
    return ""
