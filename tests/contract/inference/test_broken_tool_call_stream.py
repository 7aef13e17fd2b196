"""A stream the provider broke off while the model streamed a tool call, through the real
client: OpenAI's chunked tool-call deltas (the call's name, then pieces of its arguments),
then the connection closes. The round's estimate (UsageSpent, failed, estimated) counts the
call's name and the arguments that came as output."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from tzurot.inference.answering import AnswerSettings, ToolOffer, answer
from tzurot.inference.broken_off import prompt_tokens
from tzurot.inference.domain import PaidCall, TokenUsage, UsageMeter, UsageSpent
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import TzurotError

pytestmark = pytest.mark.contract

MODEL = "fake/echo"
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "You are Lilith, who paints the night sky."},
    {"role": "user", "content": "Ann: draw me the harbour under the moon"},
]
NAME = "generate_image"
PIECES = ['{"prompt": "a full moon ', "over the old harbour, ", "silver light on"]
TOOL = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": "Draws an image.",
        "parameters": {"type": "object", "properties": {"prompt": {"type": "string"}}},
    },
}


def _data(delta: dict[str, Any]) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    """A provider that begins a tool call, streams part of its arguments and drops."""

    async def chat(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_data({"role": "assistant", "content": None}))
        first = {"index": 0, "id": "call_1", "type": "function"}
        await response.write(
            _data({"tool_calls": [{**first, "function": {"name": NAME, "arguments": ""}}]})
        )
        for piece in PIECES:
            await response.write(
                _data({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            )
        assert request.transport is not None
        request.transport.close()  # the connection drops mid-call
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


async def test_a_stream_broken_mid_tool_call_is_estimated_with_the_call_s_text(
    base_url: str,
) -> None:
    provider = ProviderRegistry({"fakeai": base_url}).get("fakeai")
    llm = LlmClient(timeout_seconds=10.0)
    events: list[object] = []
    stream = answer(
        llm,
        provider,
        SecretStr("sk-test-key-0123"),
        model=MODEL,
        params=parse_advanced_parameters(None),
        messages=MESSAGES,
        name="Lilith",
        recent=(),
        rules=(),
        settings=AnswerSettings(retry_backoff=0.0, min_attempt_seconds=0.0),
        tools=ToolOffer((TOOL,)),
        meter=UsageMeter(),
    )
    try:
        with pytest.raises(TzurotError) as caught:
            await _drain(stream, events)
    finally:
        await llm.aclose()
    assert caught.value.reason == "PROVIDER_UNAVAILABLE"
    counter = TokenCounter(MODEL)
    usage = TokenUsage(prompt_tokens(MESSAGES, counter), counter.count(NAME + "".join(PIECES)))
    assert usage.output_tokens > 0
    assert events[-1] == UsageSpent(
        (PaidCall("", "fakeai", MODEL, usage, estimated=True),), failed=True
    )


async def _drain(stream: AsyncIterator[object], into: list[object]) -> None:
    async for event in stream:
        into.append(event)
