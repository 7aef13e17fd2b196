"""The fake's chat image output is OpenRouter's: `modalities: ["image", "text"]` answers
`message.images` with the one image drawn, each request its own, and an `n` (which OpenRouter
documents nowhere for image output) does not make more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import pytest

from tzurot.testing.fake_provider import FakeProvider

KEY = "sk-test-valid"
MODEL = "google/gemini-2.5-flash-image"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(models=(MODEL,)) as provider:
        provider.image_models.add(MODEL)
        yield provider


async def draw(fake: FakeProvider, **body: Any) -> list[str]:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{fake.base_url}/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": "a moon"}],
                "modalities": ["image", "text"],
                **body,
            },
            headers={"Authorization": f"Bearer {KEY}"},
        )
    response.raise_for_status()
    message = response.json()["choices"][0]["message"]
    return [image["image_url"]["url"] for image in message["images"]]


async def test_one_image_per_request_even_with_n(fake: FakeProvider) -> None:
    (url,) = await draw(fake, n=2)
    assert url.startswith("data:image/png;base64,")


async def test_each_request_draws_its_own_image(fake: FakeProvider) -> None:
    (first,) = await draw(fake)
    (second,) = await draw(fake)
    assert first != second
