"""LlmClient.chat_images reads the provider's image model list (`GET /models?output_modalities=
image`) once for drawings asked at once (a `count` of 2 on a cold cache), does not read it
again for each drawing after it failed, and keeps a model as image-only for every user only
when OpenRouter's 404 refused the text asked with the image and the image alone was then drawn;
any other 404 is that request's alone. Over a mock transport: no network."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx2
import openai
import pytest
from pydantic import SecretStr

from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import Provider
from tzurot.runtime.errors import TzurotError

KEY = SecretStr("sk-or-user")
PROVIDER = Provider("openrouter", "https://openrouter.test/api/v1")
FLUX = "black-forest-labs/flux.2-pro"
GEMINI = "google/gemini-2.5-flash-image"
PNG = "data:image/png;base64,iVBORw0KGgo="
REFUSED_TEXT = "No endpoints found that support the requested output modalities: image, text"
REFUSED_IMAGE = "No endpoints found that support the requested output modalities: image"
DATA_POLICY = (
    "No endpoints found matching your data policy (Free model publication). "
    "Configure: https://openrouter.ai/settings/privacy"
)


def refusal(message: str) -> httpx2.Response:
    return httpx2.Response(404, json={"error": {"message": message, "code": 404}})


def drawn() -> httpx2.Response:
    message = {"role": "assistant", "content": "", "images": [{"image_url": {"url": PNG}}]}
    return httpx2.Response(
        200,
        json={
            "choices": [{"message": message}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1290},
        },
    )


class OpenRouter:
    """The list (held until `opened` is set when given one; `list_status` other than 200 is a
    failed read) and the chat endpoint: `answers` in order, else an image."""

    def __init__(self) -> None:
        self.listed = {FLUX: ["image"], GEMINI: ["image", "text"]}
        self.list_status = 200
        self.list_body: bytes | None = None
        self.opened: asyncio.Event | None = None
        self.answers: list[httpx2.Response] = []
        self.list_reads = 0
        self.asked: list[list[str]] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/models"):
            self.list_reads += 1
            if self.opened is not None:
                await self.opened.wait()
            if self.list_status != 200:
                return httpx2.Response(self.list_status, json={"error": {"message": "down"}})
            if self.list_body is not None:  # not JSON (a proxy's page)
                return httpx2.Response(
                    200, content=self.list_body, headers={"content-type": "application/json"}
                )
            data = [
                {"id": model, "architecture": {"output_modalities": outputs}}
                for model, outputs in self.listed.items()
            ]
            return httpx2.Response(200, json={"data": data})
        self.asked.append(json.loads(request.content)["modalities"])
        return self.answers.pop(0) if self.answers else drawn()


@pytest.fixture
def openrouter() -> OpenRouter:
    return OpenRouter()


@pytest.fixture
async def llm(openrouter: OpenRouter) -> AsyncIterator[LlmClient]:
    http = openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(openrouter))
    client = LlmClient(timeout_seconds=5.0, http_client=http)
    try:
        yield client
    finally:
        await client.aclose()


async def draw(llm: LlmClient, model: str = FLUX) -> int:
    answer = await llm.chat_images(PROVIDER, KEY, model=model, prompt="a moon", aspect_ratio=None)
    return len(answer.urls)


async def test_drawings_asked_at_once_read_the_list_once(
    openrouter: OpenRouter, llm: LlmClient
) -> None:
    openrouter.opened = asyncio.Event()
    drawings = [asyncio.ensure_future(draw(llm, model)) for model in (FLUX, FLUX, GEMINI)]
    for _ in range(1000):  # until the first read is out (the others wait on it), or give up
        if openrouter.list_reads:
            break
        await asyncio.sleep(0)
    openrouter.opened.set()
    assert await asyncio.gather(*drawings) == [1, 1, 1]
    assert openrouter.list_reads == 1
    assert sorted(openrouter.asked) == [["image"], ["image"], ["image", "text"]]


async def test_a_failed_list_is_not_read_again_by_the_next_drawings(
    openrouter: OpenRouter, llm: LlmClient
) -> None:
    openrouter.list_status = 502
    assert await draw(llm, GEMINI) == 1
    assert await draw(llm, GEMINI) == 1
    assert await draw(llm, GEMINI) == 1
    assert openrouter.list_reads == 1
    assert openrouter.asked == [["image", "text"]] * 3


async def test_a_list_that_is_not_json_is_a_failed_read_kept_as_one(
    openrouter: OpenRouter, llm: LlmClient
) -> None:
    openrouter.list_body = b"<html>Bad gateway</html>"
    assert await draw(llm, GEMINI) == 1
    assert await draw(llm, GEMINI) == 1
    assert openrouter.list_reads == 1
    assert openrouter.asked == [["image", "text"]] * 2


async def test_the_refusal_of_text_is_kept_once_the_image_alone_was_drawn(
    openrouter: OpenRouter, llm: LlmClient
) -> None:
    openrouter.list_status = 502
    openrouter.answers = [refusal(REFUSED_TEXT)]
    assert await draw(llm) == 1
    assert await draw(llm) == 1
    assert openrouter.asked == [["image", "text"], ["image"], ["image"]]


async def test_a_refusal_the_image_alone_does_not_answer_is_not_kept(
    openrouter: OpenRouter, llm: LlmClient
) -> None:
    """A model that draws nothing at all (or not for this user): the drawing is asked again
    for the image alone as before, refused too; the model is not marked image-only."""
    openrouter.list_status = 502
    openrouter.answers = [refusal(REFUSED_TEXT), refusal(REFUSED_IMAGE)]
    with pytest.raises(TzurotError):
        await draw(llm, GEMINI)
    assert await draw(llm, GEMINI) == 1
    assert openrouter.asked == [["image", "text"], ["image"], ["image", "text"]]


async def test_another_404_is_not_asked_again_nor_kept(
    openrouter: OpenRouter, llm: LlmClient
) -> None:
    openrouter.list_status = 502
    openrouter.answers = [refusal(DATA_POLICY)]
    with pytest.raises(TzurotError):
        await draw(llm, GEMINI)
    assert await draw(llm, GEMINI) == 1
    assert openrouter.asked == [["image", "text"], ["image", "text"]]


async def test_a_404_that_only_mentions_modalities_is_asked_again_but_not_kept(
    openrouter: OpenRouter, llm: LlmClient
) -> None:
    """A 404 whose words name output modalities but are not OpenRouter's refusal of the text
    asked: the drawing is asked again for the image alone as before; nothing is kept."""
    openrouter.list_status = 502
    openrouter.answers = [refusal("No endpoints found matching your output modalities settings")]
    assert await draw(llm, GEMINI) == 1
    assert await draw(llm, GEMINI) == 1
    assert openrouter.asked == [["image", "text"], ["image"], ["image", "text"]]
