"""An upload the provider never had whole is never counted as a billed transcription: a
server that stops reading it (the write stalls past the timeout) or resets the connection
midway is NotReceived (httpcore hides that write error behind the read that follows; the
body's trace tells it apart). One that read the whole file and then dropped the connection
may have worked on it: counted. Real sockets, the real client (review c7a M2), with small
socket buffers on both ends (review 686 L6): only a body larger than what the connection
buffers can be seen cut short, and the kernel's own limits differ from host to host."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx2
import openai
import pytest
from pydantic import SecretStr

from tzurot.inference.llm import LlmClient
from tzurot.inference.provider_errors import provider_error
from tzurot.inference.providers import Provider
from tzurot.inference.retries import NoAnswerInTime, NotReceived
from tzurot.inference.transcription_cut_off import may_have_billed
from tzurot.runtime.errors import TzurotError

BUFFER = 64 * 1024
"""Each end's socket buffer (SO_SNDBUF on the client's, SO_RCVBUF on the server's; Linux
doubles it): fixed, not the host's autotuned few MiB."""
AUDIO = bytes(2 * 1024 * 1024)
"""Far larger than both buffers and asyncio's: a server that stops reading stalls it."""
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def resets_midway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65_536)  # some of the upload, then a reset (RST: SO_LINGER 0)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def drops_after_reading_it_all(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    got = 0
    while got < len(AUDIO):  # the whole file (and its form) arrived: then silence
        chunk = await reader.read(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    await asyncio.sleep(0.1)
    writer.close()


async def silent_after_reading_it_all(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    got = 0
    while got < len(AUDIO):
        chunk = await reader.read(1 << 20)
        if not chunk:
            return
        got += len(chunk)
    await asyncio.sleep(30)


@asynccontextmanager
async def provider_at(handler: Handler) -> AsyncIterator[Provider]:
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER)  # before listen: inherited
    listening.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(handle, sock=listening)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Provider("openai", f"http://127.0.0.1:{port}/v1")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.close()
        await server.wait_closed()


async def transcription_error(handler: Handler, step_seconds: float) -> TzurotError:
    transport = httpx2.AsyncHTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_SNDBUF, BUFFER)]
    )
    http = openai.DefaultAsyncHttpxClient(follow_redirects=False, transport=transport)
    llm = LlmClient(timeout_seconds=step_seconds, http_client=http)
    try:
        async with provider_at(handler) as provider:
            with pytest.raises(TzurotError) as caught:
                await llm.transcribe(
                    provider,
                    SecretStr("sk-test"),
                    model="whisper-1",
                    audio=AUDIO,
                    filename="voice.ogg",
                    content_type="audio/ogg",
                )
            return caught.value
    finally:
        await llm.aclose()


@pytest.mark.parametrize("handler", [never_reads, resets_midway], ids=lambda h: h.__name__)
async def test_an_upload_the_provider_never_had_whole_is_not_billed(handler: Handler) -> None:
    err = await transcription_error(handler, step_seconds=1.0)
    assert isinstance(err, NotReceived)
    assert err.reason == "PROVIDER_UNAVAILABLE"
    assert not may_have_billed(err)


async def test_a_connection_dropped_after_the_whole_upload_may_be_billed() -> None:
    err = await transcription_error(drops_after_reading_it_all, step_seconds=10.0)
    assert not isinstance(err, NotReceived)
    assert may_have_billed(err)


async def test_no_answer_in_time_after_the_whole_upload_may_be_billed() -> None:
    err = await transcription_error(silent_after_reading_it_all, step_seconds=2.0)
    assert isinstance(err, NoAnswerInTime)
    assert may_have_billed(err)


def test_a_server_error_while_the_upload_was_written_is_not_received() -> None:
    """A 500 (or 504) read after httpcore hid the write error: the provider had part of it.
    (Not over a socket: on Linux the reset that breaks the write also makes the answer
    before it unreadable, a read error, which resets_midway covers.)"""
    request = httpx2.Request("POST", "https://api.openai.com/v1/audio/transcriptions")
    for status in (500, 504):
        response = httpx2.Response(status, request=request)
        exc = openai.InternalServerError("x", response=response, body=None)
        whole = provider_error(exc, "openai", upload_cut_short=False)
        assert may_have_billed(whole)
        cut_short = provider_error(exc, "openai", upload_cut_short=True)
        assert isinstance(cut_short, NotReceived)
        assert cut_short.metadata["status"] == str(status)
        assert not may_have_billed(cut_short)
