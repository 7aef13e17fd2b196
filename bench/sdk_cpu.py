"""`python -m bench.sdk_cpu [--turns N] [--rounds R]`: the CPU of inference's provider call
inside real turns, split by piece.

Sums this thread's CPU (`time.thread_time`) of each resumption of `LlmClient.stream_chat`
over turns of one conversation through the in-process mesh, after 10 turns to warm up, and
inside it:

- `request`: the openai SDK's `post` until the response's headers (options, the two
  `model_copy`, `_prepare_options`, `_build_request`, the send, the status check); of it
  `build` (`_build_request`: headers, URL, the body's JSON, httpx2's `Request`) and `send`
  (`_send_request`: httpx2/httpcore2 writing the request and reading the headers);
- `stream`: `sse.chat_chunks` (httpx2's `EventSource` framing the body, reading it, the drain
  after `[DONE]`, closing), of it `json` (`sse._chunk`: `json.loads` and the error check);
- `take`: `AnswerAssembly.take` (our per-chunk handling);
- `ours`: the rest of `stream_chat` (its options, the generator's own steps, the completion);
- `caller`: `answering._attempt` and its `_paced` around it, less `stream_chat` (pacing, the
  prompt-sent event, the thinking filter, hold-back and echo checks: our per-event handling).

Prints µs a turn of each, calls a turn, and the process's CPU a turn. Loop timings
understate what a piece costs inside turns (PERFORMANCE.md, 7 Dec 2026 12:30): compare
before and after in the same minutes (the before from a copy of the old package put first
on PYTHONPATH).
"""

from __future__ import annotations

import statistics
import time
from collections import Counter, defaultdict
from collections.abc import AsyncGenerator, Callable
from typing import Any

import openai

from bench.turn_cpu import ThreadCpu, run_rounds, warmed_conversation
from tzurot.inference import answering, llm, sse
from tzurot.inference.chunks import AnswerAssembly

_spent: defaultdict[str, float] = defaultdict(float)
_calls: Counter[str] = Counter()
_SHOWN = ("stream_chat", "request", "build", "send", "stream", "json", "take", "ours", "caller")


async def _timed_gen(gen: AsyncGenerator[Any, Any], key: str) -> AsyncGenerator[Any, None]:
    """`gen`'s items, adding the thread CPU of each of its steps (and its close) to `key`."""
    try:
        while True:
            try:
                item = await ThreadCpu(gen.__anext__(), _spent, key)
            except StopAsyncIteration:
                return
            yield item
    finally:
        await ThreadCpu(gen.aclose(), _spent, key)


def _timed_sync(function: Callable[..., Any], key: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            _spent[key] += time.thread_time() - started
            _calls[key] += 1

    return timed


def _timed_async(function: Callable[..., Any], key: str) -> Callable[..., Any]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        _calls[key] += 1
        return await ThreadCpu(function(*args, **kwargs), _spent, key)

    return timed


def _counted_gen(make: Callable[..., Any], key: str) -> Callable[..., Any]:
    """`make` (an async generator function) with each generator it returns timed."""

    def timed(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        _calls[key] += 1
        return _timed_gen(make(*args, **kwargs), key)

    return timed


_PIECES: tuple[tuple[object, str, Callable[[Callable[..., Any], str], Any], str], ...] = (
    (llm.LlmClient, "stream_chat", _counted_gen, "stream_chat"),
    (llm, "chat_chunks", _counted_gen, "stream"),
    (answering, "_attempt", _counted_gen, "caller"),
    (openai.AsyncOpenAI, "post", _timed_async, "request"),
    (openai.AsyncOpenAI, "_send_request", _timed_async, "send"),
    (openai.AsyncOpenAI, "_build_request", _timed_sync, "build"),
    (sse, "_chunk", _timed_sync, "json"),
    (AnswerAssembly, "take", _timed_sync, "take"),
)


def _instrument() -> None:
    for owner, attribute, wrap, key in _PIECES:
        setattr(owner, attribute, wrap(getattr(owner, attribute), key))


def _per_turn(turns: int) -> dict[str, float]:
    us = {key: _spent[key] * 1e6 / turns for key in _SHOWN}
    us["ours"] = us["stream_chat"] - us["request"] - us["stream"] - us["take"]
    us["caller"] = us["caller"] - us["stream_chat"]
    return us


async def _run(turns: int, rounds: int) -> None:
    _instrument()
    rows: dict[str, list[float]] = {key: [] for key in _SHOWN}
    async with warmed_conversation(10) as run_turns:
        for _ in range(rounds):
            _spent.clear()
            _calls.clear()
            process_ms = await run_turns(turns)
            us = _per_turn(turns)
            for key in _SHOWN:
                rows[key].append(us[key])
            print(
                "  ".join(f"{key} {us[key]:6.1f}" for key in _SHOWN)
                + f"  µs/turn; calls/turn: request {_calls['request'] / turns:.1f}"
                f" chunks {_calls['json'] / turns:.1f}  (process {process_ms:5.1f} ms/turn)",
                flush=True,
            )
    print(
        "median µs/turn: " + "  ".join(f"{k} {statistics.median(v):6.1f}" for k, v in rows.items())
    )


def main() -> None:
    run_rounds("python -m bench.sdk_cpu", _run)


if __name__ == "__main__":
    main()
