"""The memory service's OpenAI-compatible embedder names a key with no credit left (OpenAI's
429 `insufficient_quota`, OpenRouter's 402) as no quota, for the operator to add credit,
rather than as a rate limit ("RateLimitError") to wait out, and never asks for it again (the
SDK's retries stay for an ordinary rate limit); any other failure keeps its kind."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai import AsyncOpenAI
from pydantic import SecretStr

from tzurot.memory.app import make_embedder
from tzurot.memory.config import MemorySettings
from tzurot.memory.embedding import (
    EMBEDDING_QUOTA_EXCEEDED,
    EmbeddingError,
    OpenAIEmbedder,
    openai_client,
)
from tzurot.testing.fake_provider import DEFAULT_KEY, FakeProvider

SPENT = "sk-embed-no-credit"


async def embed_with(fake: FakeProvider, key: str) -> EmbeddingError:
    client = AsyncOpenAI(base_url=fake.base_url, api_key=key, max_retries=0)
    embedder = OpenAIEmbedder(client, "fake/embed")
    try:
        with pytest.raises(EmbeddingError) as caught:
            await embedder.embed(["hello"])
    finally:
        await embedder.aclose()
    return caught.value


@pytest.mark.parametrize(
    ("shape", "status"), [("openai", "429, insufficient_quota"), ("openrouter", "402")]
)
async def test_a_spent_key_is_named_as_no_quota(shape: str, status: str) -> None:
    async with FakeProvider(valid_keys={SPENT}) as fake:
        fake.spent_keys.add(SPENT)
        fake.quota_shape = shape
        refused = await embed_with(fake, SPENT)
    assert refused.reason == EMBEDDING_QUOTA_EXCEEDED
    assert f"no credit or quota left (HTTP {status})" in refused.message
    assert SPENT not in refused.message


async def test_a_rate_limit_stays_a_failure_of_its_kind() -> None:
    async with FakeProvider() as fake:
        fake.fail_next(429, path="/v1/embeddings")
        refused = await embed_with(fake, DEFAULT_KEY)
    assert refused.reason == "EMBEDDING_FAILED"
    assert refused.message == "embeddings endpoint failed: RateLimitError"


def embeddings_sent(fake: FakeProvider) -> int:
    return sum(1 for r in fake.requests if r.path == "/v1/embeddings")


async def test_a_spent_key_is_asked_once_not_retried() -> None:
    async with FakeProvider(valid_keys={SPENT}) as fake:
        fake.spent_keys.add(SPENT)
        fake.quota_shape = "openai"
        embedder = OpenAIEmbedder(openai_client(fake.base_url, SPENT), "fake/embed")
        try:
            with pytest.raises(EmbeddingError) as caught:
                await embedder.embed(["hello"])
        finally:
            await embedder.aclose()
        assert caught.value.reason == EMBEDDING_QUOTA_EXCEEDED
        assert embeddings_sent(fake) == 1  # the SDK alone sends it three times


async def test_an_ordinary_rate_limit_is_still_retried() -> None:
    async with FakeProvider() as fake:
        fake.fail_next(429, retry_after=0.01, path="/v1/embeddings")
        embedder = OpenAIEmbedder(openai_client(fake.base_url, DEFAULT_KEY), "fake/embed")
        try:
            vectors = await embedder.embed(["hello"])
        finally:
            await embedder.aclose()
        assert len(vectors) == 1
        assert embeddings_sent(fake) == 2


async def test_the_service_builds_its_embedder_with_that_client(tmp_path: Path) -> None:
    async with FakeProvider(valid_keys={SPENT}) as fake:
        fake.spent_keys.add(SPENT)
        fake.quota_shape = "openai"
        settings = MemorySettings(
            database_url=SecretStr("postgresql+asyncpg://unused/unused"),
            tls_dir=tmp_path,
            embedder="openai",
            embedding_base_url=fake.base_url,
            embedding_model="fake/embed",
            embedding_api_key=SecretStr(SPENT),
        )
        embedder = make_embedder(settings)
        try:
            with pytest.raises(EmbeddingError) as caught:
                await embedder.embed(["hello"])
        finally:
            await embedder.aclose()
        assert caught.value.reason == EMBEDDING_QUOTA_EXCEEDED
        assert embeddings_sent(fake) == 1
