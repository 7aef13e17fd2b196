"""A helper model's call cut by its caller's deadline (retries.helper_completion) is billed by
what went out, as a transcription is: NoAnswerInTime, estimated for its caller to report,
only once the request went out whole; one still waiting for a pooled connection is NotSent,
one still uploading its body NotReceived, and neither is estimated (the provider never had
it). Real sockets and the real client (small socket buffers, as in
test_transcription_not_received.py)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import openai
import pytest
from pydantic import SecretStr

from tests.unit.inference.test_transcription_not_received import (
    BUFFER,
    Handler,
    never_reads,
    provider_at,
)
from tzurot.inference.dialects import helper_call
from tzurot.inference.domain import PaidCall
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import Provider
from tzurot.inference.retries import (
    NoAnswerInTime,
    NotReceived,
    NotSent,
    RetryPolicy,
    helper_completion,
)
from tzurot.runtime.errors import Unavailable
from tzurot.testing.waits import until

STEP_SECONDS = 30.0
"""The client's own timeout for each step: far longer than the deadline."""
DEADLINE = 1.0
GIVE_UP = 10.0
"""The test's own bound: a call nothing ends is a failure, not a hang."""
SMALL = "fix this " * 200
LARGE = "a" * (2 * 1024 * 1024)
"""An image's base64, say: far larger than both socket buffers, so a server that stops
reading stalls its upload."""


async def reads_it_all_then_silent(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    await asyncio.sleep(30)


@asynccontextmanager
async def pool_held(
    handler: Handler, http: httpx2.AsyncClient, connections: int | None
) -> AsyncIterator[Provider]:
    """The provider at `handler`, the pool's `connections` (none: no limit, none held) each
    held by a call that never ends: each one's connection accepted by the provider (a
    connection is its call's from the moment the pool hands it over, before it connects)."""
    accepted = 0

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        await handler(reader, writer)

    holding: list[asyncio.Task[httpx2.Response]] = []
    async with provider_at(counted) as provider:
        try:
            for _ in range(connections or 0):
                holding.append(
                    asyncio.create_task(http.post(f"{provider.base_url}/x", content=b"x"))
                )
            await until(lambda: accepted >= len(holding), "each call holding a connection")
            yield provider
        finally:
            for task in holding:
                task.cancel()
            await asyncio.gather(*holding, return_exceptions=True)


async def deadline_error(
    handler: Handler, content: str, *, connections: int | None = None
) -> tuple[Unavailable, list[PaidCall], float]:
    """The error and the estimates of a helper call cut by DEADLINE; `connections`: the pool's
    size, all of them held by calls that never end before it starts."""
    transport = httpx2.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)],
        limits=httpx2.Limits(max_connections=connections),
    )
    http = openai.DefaultAsyncHttpxClient(follow_redirects=False, transport=transport)
    llm = LlmClient(timeout_seconds=STEP_SECONDS, http_client=http)
    cut_off: list[PaidCall] = []
    call = helper_call([{"role": "user", "content": content}], "fake/cheap")
    try:
        async with pool_held(handler, http, connections) as provider:
            began = time.monotonic()
            with pytest.raises(Unavailable) as caught:
                await asyncio.wait_for(
                    helper_completion(
                        llm,
                        provider,
                        SecretStr("sk-test"),
                        "fake/cheap",
                        call,
                        RetryPolicy(failures=0).within(DEADLINE),
                        request_type="image_description",
                        cut_off=cut_off,
                    ),
                    GIVE_UP,
                )
            return caught.value, cut_off, time.monotonic() - began
    finally:
        await llm.aclose()


async def test_a_call_waiting_for_a_pooled_connection_at_the_deadline_is_not_billed() -> None:
    err, cut_off, took = await deadline_error(never_reads, SMALL, connections=1)
    assert isinstance(err, NotSent)
    assert cut_off == []
    assert took < DEADLINE + 2


async def test_a_call_still_uploading_at_the_deadline_is_not_billed() -> None:
    err, cut_off, took = await deadline_error(never_reads, LARGE)
    assert isinstance(err, NotReceived)
    assert cut_off == []
    assert took < DEADLINE + 2


async def test_a_call_sent_whole_and_unanswered_at_the_deadline_is_estimated() -> None:
    err, cut_off, took = await deadline_error(reads_it_all_then_silent, LARGE)
    assert isinstance(err, NoAnswerInTime)  # the provider had it all: it may be at work
    (paid,) = cut_off
    assert (paid.request_type, paid.estimated) == ("image_description", True)
    assert paid.usage.input_tokens > 0
    assert paid.usage.output_tokens == 0
    assert took < DEADLINE + 2
