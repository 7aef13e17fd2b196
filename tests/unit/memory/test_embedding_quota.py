"""The memory service's OpenAI-compatible embedder names a key with no credit left (OpenAI's
429 `insufficient_quota`, OpenRouter's 402) as no quota, for the operator to add credit,
rather than as a rate limit ("RateLimitError") to wait out; any other failure keeps its kind."""

from __future__ import annotations

import pytest
from openai import AsyncOpenAI

from tzurot.memory.embedding import EMBEDDING_QUOTA_EXCEEDED, EmbeddingError, OpenAIEmbedder
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
