"""The first answer after start is as fast as the next (issue #14): memory runs its local
embedding model once during start-up, before it reports SERVING, rather than on the first
message (whose encode alone cost seconds). Asserted as behaviour, not a time (figures: bench
`cold_start`, docs/PERFORMANCE.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr

from tzurot.memory.app import start_memory
from tzurot.memory.config import MemorySettings
from tzurot.memory.embedding import Embedder
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder

pytestmark = pytest.mark.component


class CountingOnnx(OnnxMiniLMEmbedder):
    """The real local model, counting what it encodes."""

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[list[str]] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.encoded.append(list(texts))
        return await super().embed(texts)


async def test_the_local_model_has_run_once_when_memory_starts_serving(
    memory_url: str, pki: Path
) -> None:
    embedder = CountingOnnx()
    settings = MemorySettings(
        listen="127.0.0.1:0", tls_dir=pki / "memory", database_url=SecretStr(memory_url)
    )
    app = await start_memory(settings, embedder)
    try:
        assert len(embedder.encoded) == 1  # warmed before the first message, not by it
    finally:
        await app.stop()


async def test_a_remote_embedder_is_not_called_at_start(
    memory_url: str, pki: Path, embedder: Embedder
) -> None:
    """Its endpoint being down must not stop memory from starting: nothing is sent to it."""
    calls: list[Sequence[str]] = []
    original = embedder.embed

    async def counting(texts: Sequence[str]) -> list[list[float]]:
        calls.append(texts)
        return await original(texts)

    embedder.embed = counting  # type: ignore[method-assign]
    settings = MemorySettings(
        listen="127.0.0.1:0", tls_dir=pki / "memory", database_url=SecretStr(memory_url)
    )
    app = await start_memory(settings, embedder)
    try:
        assert calls == []
    finally:
        await app.stop()
