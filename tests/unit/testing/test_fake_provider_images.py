"""The fake's image models are OpenRouter's: an image-only model refuses text with OpenRouter's
404 and draws for `modalities: ["image"]`, `image_config.aspect_ratio` takes only the documented
ratios, and the model list gives each model's output modalities, filtered as OpenRouter's is
(openrouter.ai/docs/guides/overview/multimodal/image-generation, openrouter.ai/docs/models)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import pytest

from tzurot.testing.fake_provider import FakeProvider

KEY = "sk-test-valid"
GEMINI = "google/gemini-2.5-flash-image"
GEMINI_31 = "google/gemini-3.1-flash-image-preview"
FLUX = "black-forest-labs/flux.2-pro"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(models=("fake/echo", GEMINI, GEMINI_31, FLUX)) as provider:
        provider.image_models |= {GEMINI, GEMINI_31}
        provider.image_only_models.add(FLUX)
        yield provider


async def chat(fake: FakeProvider, model: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{fake.base_url}/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "a moon"}], **body},
            headers={"Authorization": f"Bearer {KEY}"},
        )


async def listed(fake: FakeProvider, query: str = "") -> dict[str, list[str]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{fake.base_url}/models{query}", headers={"Authorization": f"Bearer {KEY}"}
        )
    response.raise_for_status()
    return {m["id"]: m["architecture"]["output_modalities"] for m in response.json()["data"]}


async def test_an_image_only_model_refuses_image_and_text_as_openrouter_does(
    fake: FakeProvider,
) -> None:
    refused = await chat(fake, FLUX, modalities=["image", "text"])
    assert refused.status_code == 404
    assert refused.json() == {
        "error": {
            "code": 404,
            "message": "No endpoints found that support the requested output modalities: "
            "image, text",
        }
    }


async def test_an_image_only_model_refuses_a_plain_chat(fake: FakeProvider) -> None:
    refused = await chat(fake, FLUX)
    assert refused.status_code == 404
    assert refused.json()["error"]["message"].endswith("output modalities: text")


async def test_an_image_only_model_draws_for_image_alone(fake: FakeProvider) -> None:
    answer = await chat(fake, FLUX, modalities=["image"])
    assert answer.status_code == 200
    message = answer.json()["choices"][0]["message"]
    assert message["content"] == ""
    (image,) = message["images"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,")


async def test_a_text_and_image_model_takes_either(fake: FakeProvider) -> None:
    assert (await chat(fake, GEMINI, modalities=["image", "text"])).status_code == 200
    assert (await chat(fake, GEMINI, modalities=["image"])).status_code == 200


@pytest.mark.parametrize("ratio", ["7:3", "16:10", "wide", "1:4", 1.5])
async def test_an_aspect_ratio_off_the_documented_list_is_refused(
    fake: FakeProvider, ratio: object
) -> None:
    refused = await chat(
        fake, GEMINI, modalities=["image", "text"], image_config={"aspect_ratio": ratio}
    )
    assert refused.status_code == 400
    assert "aspect_ratio" in refused.json()["error"]["message"]


async def test_image_config_must_be_an_object(fake: FakeProvider) -> None:
    refused = await chat(fake, GEMINI, modalities=["image", "text"], image_config="16:9")
    assert refused.status_code == 400


@pytest.mark.parametrize("ratio", ["1:1", "16:9", "9:16", "4:3", "3:4", "21:9"])
async def test_a_documented_aspect_ratio_is_drawn_and_recorded(
    fake: FakeProvider, ratio: str
) -> None:
    config = {"aspect_ratio": ratio}
    answer = await chat(fake, FLUX, modalities=["image"], image_config=config)
    assert answer.status_code == 200
    (received,) = fake.chat_image_requests()
    assert received.body["image_config"] == config


async def test_the_extended_ratios_only_on_gemini_3_1_flash_image(fake: FakeProvider) -> None:
    config = {"image_config": {"aspect_ratio": "8:1"}}
    assert (await chat(fake, GEMINI_31, modalities=["image", "text"], **config)).status_code == 200
    assert (await chat(fake, GEMINI, modalities=["image", "text"], **config)).status_code == 400


async def test_the_model_list_gives_output_modalities_filtered_as_openrouter_does(
    fake: FakeProvider,
) -> None:
    assert await listed(fake) == {
        "fake/echo": ["text"],
        GEMINI: ["image", "text"],
        GEMINI_31: ["image", "text"],
    }
    images = {GEMINI: ["image", "text"], GEMINI_31: ["image", "text"], FLUX: ["image"]}
    assert await listed(fake, "?output_modalities=image") == images
    assert await listed(fake, "?output_modalities=text,image") == {
        GEMINI: ["image", "text"],
        GEMINI_31: ["image", "text"],
    }
    assert len(await listed(fake, "?output_modalities=all")) == 4


async def test_with_any_model_the_image_models_are_listed_too() -> None:
    async with FakeProvider(any_model=True) as fake:
        fake.image_only_models.add(FLUX)
        assert await listed(fake, "?output_modalities=image") == {FLUX: ["image"]}
        assert FLUX not in await listed(fake)
