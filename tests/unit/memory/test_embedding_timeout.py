"""The OpenAI-compatible embedder gives up on a hung endpoint within its own timeout, the
SDK's retries included (the SDK alone waits 600 s a try), so a formation batch fails well
within its lease instead of holding it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tzurot.memory import embedding
from tzurot.memory.embedding import EmbeddingError, OpenAIEmbedder, openai_client


@pytest.fixture
async def hung_endpoint() -> AsyncIterator[str]:
    """A server that accepts connections and never answers."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client goes
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()


async def test_a_hung_endpoint_fails_within_the_timeout_retries_included(
    hung_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding, "REMOTE_TIMEOUT_SECONDS", 0.5, raising=False)
    embedder = OpenAIEmbedder(openai_client(hung_endpoint, "none"), "m")  # SDK_RETRIES
    started = time.monotonic()
    try:
        with pytest.raises(EmbeddingError, match="Timeout"):
            await asyncio.wait_for(embedder.embed(["hello"]), 10)
    finally:
        await embedder.aclose()
    assert time.monotonic() - started < 2
