"""`python -m bench.transport`: the openai SDK's two HTTP transports, side by side (issue 16).

`LlmClient` sends every provider request through `openai.DefaultAsyncHttpxClient` (httpx2 →
httpcore2 → h11 → anyio). The SDK also ships `openai.DefaultAioHttpClient` (its vendored
httpx-over-aiohttp transport). This measures the process CPU of one streamed chat answer
(`LlmClient.stream_chat`, a 6-chunk answer) through each, against the fake provider in a
child process, so that only the client's side is counted (aiohttp parses in protocol
callbacks outside the calling coroutine, which a per-coroutine clock would miss). Rounds of
`--calls` calls alternate between the two transports; the figure is per call.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from multiprocessing.queues import Queue

import openai
from pydantic import SecretStr

from bench.results import Figure, summarise, table
from bench.sse import KEY, MESSAGES
from tzurot.inference.dialects import build_call
from tzurot.inference.llm import LlmClient
from tzurot.inference.params import parse_advanced_parameters
from tzurot.inference.providers import Provider
from tzurot.testing.fake_provider import FakeProvider

REPLY = "word0 word1 word2 word3 word4 word5"


def _serve(ready: Queue[str]) -> None:
    async def serve() -> None:
        async with FakeProvider(valid_keys={KEY}) as fake:
            fake.reply = REPLY
            ready.put(fake.base_url)
            await asyncio.Event().wait()

    asyncio.run(serve())


async def _measure(base_url: str, rounds: int, calls: int) -> list[Figure]:
    target = Provider("fakeai", base_url)
    call = build_call(target.name, "fake/echo", parse_advanced_parameters(None), MESSAGES)
    clients = {
        "httpx (as shipped)": LlmClient(timeout_seconds=30.0),
        "aiohttp": LlmClient(
            timeout_seconds=30.0,
            http_client=openai.DefaultAioHttpClient(follow_redirects=False),
        ),
    }

    async def one(llm: LlmClient) -> None:
        async for _ in llm.stream_chat(target, SecretStr(KEY), model="fake/echo", call=call):
            pass

    for llm in clients.values():  # connections and first-use work
        for _ in range(20):
            await one(llm)
    per_call: dict[str, list[float]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, llm in clients.items():
            started = time.process_time()
            for _ in range(calls):
                await one(llm)
            per_call[name].append((time.process_time() - started) * 1000 / calls)
    for llm in clients.values():
        await llm.aclose()
    return [
        summarise(f"stream_chat process CPU per call, {name}", samples, calls_per_round=calls)
        for name, samples in per_call.items()
    ]


def run(quick: bool) -> list[Figure]:
    context = multiprocessing.get_context("spawn")
    ready: Queue[str] = context.Queue()
    provider = context.Process(target=_serve, args=(ready,), daemon=True)
    provider.start()
    try:
        base_url = ready.get(timeout=60)
        return asyncio.run(_measure(base_url, rounds=4 if quick else 8, calls=100))
    finally:
        provider.kill()
        provider.join()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.transport")
    parser.add_argument("--quick", action="store_true")
    print(table(run(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
