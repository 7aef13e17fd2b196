"""The real LlmClient asks an OpenRouter image model on the chat endpoint for the modalities
the provider's model list says it outputs (`GET /models?output_modalities=image`,
`architecture.output_modalities`): `["image"]` for an image-only model, which refuses
`["image", "text"]` with OpenRouter's 404, `["image", "text"]` for one that writes too or that
the list does not describe; the list is read once and kept. The aspect ratio asked goes as
`image_config.aspect_ratio`. Against the fake provider over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import Provider
from tzurot.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.contract

KEY = SecretStr("sk-or-user")
FLUX = "black-forest-labs/flux.2-pro"
GEMINI = "google/gemini-2.5-flash-image"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY.get_secret_value()}, any_model=True) as provider:
        provider.image_only_models.add(FLUX)
        provider.image_models.add(GEMINI)
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


def openrouter(fake: FakeProvider) -> Provider:
    return Provider("openrouter", fake.base_url)


def listings(fake: FakeProvider) -> int:
    return len([r for r in fake.requests if r.path == "/v1/models"])


async def test_an_image_only_model_is_asked_for_the_image_alone_and_draws(
    fake: FakeProvider, llm: LlmClient
) -> None:
    answer = await llm.chat_images(
        openrouter(fake), KEY, model=FLUX, prompt="a wide desert", aspect_ratio="16:9"
    )
    assert len(answer.urls) == 1
    (received,) = fake.chat_image_requests()
    assert received.body["modalities"] == ["image"]
    assert received.body["image_config"] == {"aspect_ratio": "16:9"}


async def test_a_model_that_writes_too_is_asked_for_both(
    fake: FakeProvider, llm: LlmClient
) -> None:
    await llm.chat_images(openrouter(fake), KEY, model=GEMINI, prompt="a moon", aspect_ratio=None)
    (received,) = fake.chat_image_requests()
    assert received.body["modalities"] == ["image", "text"]
    assert "image_config" not in received.body


async def test_the_model_list_is_read_once_per_model(fake: FakeProvider, llm: LlmClient) -> None:
    for _ in range(3):
        await llm.chat_images(openrouter(fake), KEY, model=FLUX, prompt="a moon", aspect_ratio=None)
    assert listings(fake) == 1
    assert [r.body["modalities"] for r in fake.chat_image_requests()] == [["image"]] * 3


async def test_a_list_that_cannot_be_read_asks_for_both_then_the_image_alone(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """The list failing leaves the documented default; the image-only model refuses it (a 404,
    nothing drawn), so the drawing is asked again for the image alone, which is kept: the next
    drawing neither reads the list nor asks for text."""
    fake.fail_next(502, path="/v1/models")
    answer = await llm.chat_images(
        openrouter(fake), KEY, model=FLUX, prompt="a moon", aspect_ratio=None
    )
    assert len(answer.urls) == 1
    await llm.chat_images(openrouter(fake), KEY, model=FLUX, prompt="a sun", aspect_ratio=None)
    assert listings(fake) == 1
    assert [r.body["modalities"] for r in fake.chat_image_requests()] == [
        ["image", "text"],
        ["image"],
        ["image"],
    ]
