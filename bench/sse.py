"""`python -m bench.sse`: CPU to read a streamed chat answer (issue 16, inference's side).

Two figures for one answer of 500 chunks shaped as OpenAI sends them (`usage: null` in
each, then the finish chunk, the usage chunk and `[DONE]`), one event per network read:

- `sse parse`: the body from memory (no network), read the SDK's way
  (`AsyncStream[ChatCompletionChunk]`, a pydantic model per chunk; what `LlmClient` did
  before issue 16) and inference's way (`sse.chat_chunks`: `httpx2.EventSource` and
  `json.loads`, then `chunks.AnswerAssembly`);
- `stream_chat`: `LlmClient.stream_chat` against the fake provider over loopback, counting
  only the CPU the client's coroutine uses (the fake provider runs in the same thread, in
  other tasks), for a 500-chunk answer and a 6-chunk one.

CPU is this thread's time (`time.thread_time`), which other processes' load moves less
than wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionChunk
from pydantic import SecretStr

from bench.results import Figure, summarise, table
from tzurot.inference.chunks import AnswerAssembly
from tzurot.inference.dialects import build_call
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.providers import Provider
from tzurot.inference.sse import chat_chunks
from tzurot.testing.fake_provider import FakeProvider

CHUNKS = 500
KEY = "sk-bench-sse"
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Ann: tell me a long story"},
]


def answer_events(chunks: int = CHUNKS) -> list[bytes]:
    """One streamed answer as OpenAI frames it, one SSE event per element."""
    head = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }

    def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> bytes:
        chunk = {**head, "choices": choices, "usage": usage}
        return f"data: {json.dumps(chunk)}\n\n".encode()

    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    events = [event([choice({"role": "assistant", "content": "", "refusal": None})])]
    events += [event([choice({"content": f" word{n}"})]) for n in range(chunks - 3)]
    events.append(event([choice({}, "stop")]))
    events.append(event([], {"prompt_tokens": 20, "completion_tokens": chunks, "total_tokens": 0}))
    events.append(b"data: [DONE]\n\n")
    return events


class _Body(httpx2.AsyncByteStream):
    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield event


def _response(events: list[bytes]) -> httpx2.Response:
    return httpx2.Response(
        200,
        headers={"content-type": "text/event-stream; charset=utf-8"},
        stream=_Body(events),
        request=httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions"),
    )


async def read_sdk(client: openai.AsyncOpenAI, events: list[bytes]) -> str:
    """The SDK's typed stream, as `LlmClient` read it before issue 16."""
    stream = openai.AsyncStream(
        cast_to=ChatCompletionChunk, response=_response(events), client=client
    )
    pieces = [
        chunk.choices[0].delta.content or ""
        async for chunk in stream
        if chunk.choices and chunk.choices[0].delta
    ]
    return "".join(pieces)


async def read_json(events: list[bytes]) -> str:
    assembly = AnswerAssembly()
    async for chunk in chat_chunks(_response(events)):
        assembly.take(chunk)
    return assembly.completion(MESSAGES).content


class _CpuOf:
    """Awaits a coroutine, adding the CPU this thread spends inside it to `seconds`."""

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self.awaitable = awaitable
        self.seconds = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        inner = self.awaitable.__await__()
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.thread_time()
            try:
                waiting = inner.throw(error) if error is not None else inner.send(value)
            except StopIteration as stop:
                self.seconds += time.thread_time() - started
                return stop.value
            self.seconds += time.thread_time() - started
            try:
                value, error = (yield waiting), None
            except BaseException as exc:  # handed to the coroutine
                value, error = None, exc


async def _cpu_ms(run: Callable[[], Awaitable[Any]]) -> float:
    measured = _CpuOf(run())
    await measured
    return measured.seconds * 1000


async def _parse_figures(repeat: int) -> list[Figure]:
    events = answer_events()
    client = openai.AsyncOpenAI(api_key=KEY, base_url="http://127.0.0.1:9/v1")
    assert await read_sdk(client, events) == await read_json(events)
    sdk = [await _cpu_ms(lambda: read_sdk(client, events)) for _ in range(repeat)]
    ours = [await _cpu_ms(lambda: read_json(events)) for _ in range(repeat)]
    await client.close()
    per_chunk_us = round(1000 * sorted(ours)[len(ours) // 2] / CHUNKS, 1)
    note = {"chunks": CHUNKS, "per_chunk_us": per_chunk_us}
    return [
        summarise("sse parse, SDK typed chunks (before)", sdk, chunks=CHUNKS),
        summarise("sse parse, EventSource + json (now)", ours, **note),
    ]


async def _stream_figures(repeat: int) -> list[Figure]:
    figures: list[Figure] = []
    llm = LlmClient(timeout_seconds=30.0)
    async with FakeProvider(valid_keys={KEY}) as fake:
        target = Provider("fakeai", fake.base_url)
        call = build_call(target.name, "fake/echo", parse_advanced_parameters(None), MESSAGES)

        async def one() -> None:
            events = llm.stream_chat(target, SecretStr(KEY), model="fake/echo", call=call)
            async for _ in events:
                pass

        for words in (CHUNKS - 3, 3):
            fake.reply = " ".join(f"word{n}" for n in range(words))
            await _cpu_ms(one)  # connection and first-use work
            samples = [await _cpu_ms(one) for _ in range(repeat)]
            figures.append(summarise(f"stream_chat client CPU, {words + 3} chunks", samples))
    await llm.aclose()
    return figures


async def _all(quick: bool) -> list[Figure]:
    repeat = 10 if quick else 40
    return await _parse_figures(repeat) + await _stream_figures(repeat)


def run(quick: bool) -> list[Figure]:
    return asyncio.run(_all(quick))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sse")
    parser.add_argument("--quick", action="store_true")
    print(table(run(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
