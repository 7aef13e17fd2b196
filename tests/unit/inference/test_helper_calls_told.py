"""What a helper call tells while it runs (retries.helper_completion's `tell`, billable.py):
its prompt's estimate only once its request was handed to the provider whole (the client's
upload trace, uploads.py), never for one still waiting for a pooled connection or still
uploading its body; taken back when the provider refuses it; left told when no answer comes
in time (the provider may be at work, and billing). Real sockets and the real client, as in
test_helper_deadline_sent.py. And the runner that says it while the call runs."""

from __future__ import annotations

import asyncio
import json
import socket

import httpx2
import openai
import pytest
from pydantic import SecretStr

from tests.unit.inference.test_helper_deadline_sent import (
    LARGE,
    SMALL,
    STEP_SECONDS,
    pool_held,
    reads_it_all_then_silent,
)
from tests.unit.inference.test_transcription_not_received import (
    BUFFER,
    Handler,
    never_reads,
)
from tzurot.inference.billable import Billable, Outcome, Tell, running
from tzurot.inference.dialects import helper_call
from tzurot.inference.domain import PaidCall, TokenUsage
from tzurot.inference.llm import LlmClient
from tzurot.inference.retries import (
    NoAnswerInTime,
    NotReceived,
    NotSent,
    RetryPolicy,
    helper_completion,
)
from tzurot.runtime.errors import FailedPrecondition, TzurotError, Unavailable

DEADLINE = 1.0
GIVE_UP = 10.0
KEY = "sk-testTOLDzq7Wm3Xv9Rt2"


async def reads_it_all_then_refuses(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """The whole request read, then the key refused (401): nothing billed."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    body = json.dumps({"error": {"message": "bad key", "code": "invalid_api_key"}}).encode()
    writer.write(
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def told_by(
    handler: Handler, content: str, *, connections: int | None = None
) -> tuple[TzurotError, list[PaidCall | None], list[PaidCall]]:
    """The error of a helper call cut by DEADLINE (or ended by the provider), what it told,
    and its estimates; `connections`: the pool's size, all held by calls that never end."""
    transport = httpx2.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)],
        limits=httpx2.Limits(max_connections=connections),
    )
    http = openai.DefaultAsyncHttpxClient(follow_redirects=False, transport=transport)
    llm = LlmClient(timeout_seconds=STEP_SECONDS, http_client=http)
    told: list[PaidCall | None] = []
    cut_off: list[PaidCall] = []
    call = helper_call([{"role": "user", "content": content}], "fake/cheap")
    try:
        async with pool_held(handler, http, connections) as provider:
            with pytest.raises(TzurotError) as caught:
                await asyncio.wait_for(
                    helper_completion(
                        llm,
                        provider,
                        SecretStr(KEY),
                        "fake/cheap",
                        call,
                        RetryPolicy(failures=0).within(DEADLINE),
                        request_type="transcript_cleanup",
                        cut_off=cut_off,
                        tell=told.append,
                    ),
                    GIVE_UP,
                )
            return caught.value, told, cut_off
    finally:
        await llm.aclose()


async def test_a_call_waiting_for_a_pooled_connection_tells_nothing() -> None:
    err, told, _ = await told_by(never_reads, SMALL, connections=1)
    assert isinstance(err, NotSent)
    assert told == []


async def test_a_call_still_uploading_tells_nothing() -> None:
    err, told, _ = await told_by(never_reads, LARGE)
    assert isinstance(err, NotReceived)
    assert told == []


async def test_a_call_sent_whole_tells_its_prompt_and_keeps_it_when_unanswered() -> None:
    err, told, cut_off = await told_by(reads_it_all_then_silent, LARGE)
    assert isinstance(err, NoAnswerInTime)
    (estimate,) = told  # never taken back: the provider may be at work, and billing
    assert estimate is not None
    assert (estimate.request_type, estimate.provider, estimate.model) == (
        "transcript_cleanup",
        "openai",
        "fake/cheap",
    )
    assert estimate.estimated
    assert estimate.usage.output_tokens == 0
    (paid,) = cut_off  # what is reported then: the same prompt
    assert estimate.usage.input_tokens == paid.usage.input_tokens > 0


async def test_a_call_sent_whole_then_refused_is_taken_back() -> None:
    err, told, cut_off = await told_by(reads_it_all_then_refuses, SMALL)
    assert isinstance(err, FailedPrecondition)
    assert err.reason == "INVALID_API_KEY"
    assert len(told) == 2
    assert told[0] is not None
    assert told[1] is None  # refused: nothing billed
    assert cut_off == []
    assert KEY not in repr(told)


# -- the runner (billable.running) -------------------------------------------------------------

ESTIMATE = PaidCall(
    "image_description", "openai", "gpt-4o-mini", TokenUsage(900, 0), estimated=True
)


async def test_what_a_call_tells_is_said_while_it_runs_then_its_outcome() -> None:
    gate = asyncio.Event()

    async def call(tell: Tell) -> str:
        tell(ESTIMATE)
        await gate.wait()
        return "a cat"

    steps = running(call)
    assert await anext(steps) == Billable(ESTIMATE)  # while the provider works
    gate.set()
    assert await anext(steps) == Outcome("a cat")
    with pytest.raises(StopAsyncIteration):
        await anext(steps)


async def test_what_is_told_as_the_call_ends_is_said_too() -> None:
    """Its outcome goes out only after more awaits (a reply cut among them has only this to
    say the call was billed: review 307 L1), and replaces it; a take-back follows what it
    takes back."""

    async def answered(tell: Tell) -> str:
        tell(ESTIMATE)
        return "a cat"

    assert [s async for s in running(answered)] == [Billable(ESTIMATE), Outcome("a cat")]
    gate = asyncio.Event()

    async def refused(tell: Tell) -> str:
        tell(ESTIMATE)
        await gate.wait()
        tell(None)
        raise Unavailable("refused", reason="PROVIDER_UNAVAILABLE")

    said: list[object] = []

    async def read_all() -> None:
        async for step in running(refused):
            said.append(step)
            gate.set()

    with pytest.raises(Unavailable):
        await read_all()
    assert said == [Billable(ESTIMATE), Billable(None)]


async def test_closing_it_ends_the_call() -> None:
    ended = asyncio.Event()

    async def call(tell: Tell) -> str:
        tell(ESTIMATE)
        try:
            await asyncio.sleep(30)
        finally:
            ended.set()
        return "never"

    steps = running(call)
    await anext(steps)
    await steps.aclose()
    assert ended.is_set()
