"""A transcription's `time_limit` bounds the whole request, not each step of it (the client's
own timeout bounds each step): past it, a provider that had the whole upload and is still at
work is NoAnswerInTime (it may bill), an upload still going out is NotReceived (it cannot).
`on_sent` is told the moment the upload was handed over whole. Real sockets and the real
client, with small socket buffers (test_transcription_not_received.py)."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx2
import openai
import pytest
from pydantic import SecretStr

from tests.unit.inference.test_transcription_not_received import (
    AUDIO,
    BUFFER,
    Handler,
    never_reads,
    provider_at,
)
from tzurot.inference.llm import LlmClient
from tzurot.inference.retries import NoAnswerInTime, NotReceived
from tzurot.runtime.errors import TzurotError

STEP_SECONDS = 30.0
"""The client's own timeout for each step: far longer than the time limit."""
TIME_LIMIT = 1.5
GIVE_UP = 10.0
"""The test's own bound: a call nothing ends is a failure, not a hang."""


async def works_on_it_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads the whole upload, then trickles a byte of an answer's headers every 0.5 s: each
    step is quick, the whole never ends (a proxy's keep-alive, a slow provider)."""
    got = 0
    while got < len(AUDIO):
        chunk = await reader.read(1 << 20)
        if not chunk:
            return
        got += len(chunk)
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 600:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.5)


async def transcription_error(handler: Handler, sent: list[float]) -> tuple[TzurotError, float]:
    transport = httpx2.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)]
    )
    http = openai.DefaultAsyncHttpxClient(follow_redirects=False, transport=transport)
    llm = LlmClient(timeout_seconds=STEP_SECONDS, http_client=http)
    began = time.monotonic()
    try:
        async with provider_at(handler) as provider:
            with pytest.raises(TzurotError) as caught:
                await asyncio.wait_for(
                    llm.transcribe(
                        provider,
                        SecretStr("sk-test"),
                        model="whisper-1",
                        audio=AUDIO,
                        filename="voice.ogg",
                        content_type="audio/ogg",
                        time_limit=TIME_LIMIT,
                        on_sent=lambda: sent.append(time.monotonic()),
                    ),
                    GIVE_UP,
                )
            return caught.value, time.monotonic() - began
    finally:
        await llm.aclose()


async def test_a_provider_at_work_past_the_time_limit_is_no_answer_in_time() -> None:
    sent: list[float] = []
    err, took = await transcription_error(works_on_it_slowly, sent)
    assert isinstance(err, NoAnswerInTime)  # it had the whole file: it may bill
    assert len(sent) == 1
    assert TIME_LIMIT <= took < TIME_LIMIT + 2  # not the client's own 30 s step


async def test_an_upload_still_going_out_at_the_time_limit_is_not_received() -> None:
    sent: list[float] = []
    err, took = await transcription_error(never_reads, sent)
    assert isinstance(err, NotReceived)
    assert sent == []
    assert took < TIME_LIMIT + 2
