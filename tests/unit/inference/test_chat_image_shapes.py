"""generate_image on the chat endpoint asks for the shape the user asked, as OpenRouter's
`image_config.aspect_ratio` (landscape 16:9, portrait 9:16; a square, the default, sends none).
The `modalities` an image model is asked for follow what its provider's model list says it
outputs (`["image"]` for an image-only model), read once per provider and kept an hour; a list
that could not be read is kept a minute (test_image_modalities_kept.py)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from tzurot.inference.domain import ImageAnswer, TokenUsage
from tzurot.inference.image_modalities import ChatModalities, chat_modalities
from tzurot.inference.providers import Provider
from tzurot.inference.skills.base import SkillContext
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings
from tzurot.testing.fake_tools import tiny_png

PROVIDER = Provider("openrouter", "http://127.0.0.1:9/v1")
MODEL = "black-forest-labs/flux.2-pro"
PNG = "data:image/png;base64," + base64.b64encode(tiny_png("a moon")).decode()


@dataclass
class ChatImages:
    """A chat image model: the aspect ratio of each request."""

    asked: list[str | None] = field(default_factory=list)

    async def chat_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str | None,
    ) -> ImageAnswer:
        self.asked.append(aspect_ratio)
        return ImageAnswer((PNG,), TokenUsage(10, 1290))

    async def generate_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        count: int,
        size: str,
    ) -> ImageAnswer:
        raise AssertionError("the chat endpoint is configured")


async def key_for(name: str, model: str) -> tuple[Provider, SecretStr]:
    return PROVIDER, SecretStr("sk-or-user")


def painter(images: ChatImages) -> GenerateImageSkill:
    fetcher = SafeFetcher(EgressPolicy(allow=frozenset(), timeout=1.0, max_bytes=1024))
    return GenerateImageSkill(images, ImageSettings("openrouter", MODEL, endpoint="chat"), fetcher)


async def draw(skill: GenerateImageSkill, **args: object) -> None:
    ctx = SkillContext(user_id="u-1", personality_id="p-1", provider_key=key_for)
    output = await skill.run({"prompt": "a moon", **args}, ctx)
    assert len(output.files) == 1


@pytest.mark.parametrize(
    ("size", "ratio"), [("landscape", "16:9"), ("portrait", "9:16"), ("square", None)]
)
async def test_the_shape_asked_is_sent_as_the_aspect_ratio(size: str, ratio: str | None) -> None:
    images = ChatImages()
    await draw(painter(images), size=size)
    assert images.asked == [ratio]


async def test_no_shape_asked_is_a_square() -> None:
    images = ChatImages()
    await draw(painter(images))
    assert images.asked == [None]


def test_the_chat_endpoint_offers_the_three_shapes() -> None:
    schema = painter(ChatImages()).parameters["properties"]
    assert schema["size"]["enum"] == ["square", "portrait", "landscape"]


async def test_a_list_that_could_not_be_read_is_read_again_after_a_minute() -> None:
    now = [0.0]
    kept = ChatModalities(clock=lambda: now[0])
    answers: list[dict[str, frozenset[str]] | None] = [None, {MODEL: frozenset({"image"})}]

    async def look_up() -> dict[str, frozenset[str]] | None:
        return answers.pop(0)

    assert await kept.for_model("openrouter", "u", MODEL, look_up) == ("image", "text")
    now[0] = 61.0
    assert await kept.for_model("openrouter", "u", MODEL, look_up) == ("image",)
    assert await kept.for_model("openrouter", "u", MODEL, look_up) == ("image",)  # kept
    assert answers == []


async def test_what_was_kept_is_read_again_after_an_hour() -> None:
    now = [0.0]
    kept = ChatModalities(clock=lambda: now[0])
    answers = [{MODEL: frozenset({"image", "text"})}, {MODEL: frozenset({"image"})}]

    async def look_up() -> dict[str, frozenset[str]] | None:
        return answers.pop(0)

    assert await kept.for_model("openrouter", "u", MODEL, look_up) == ("image", "text")
    now[0] = 3599.0
    assert await kept.for_model("openrouter", "u", MODEL, look_up) == ("image", "text")
    now[0] = 3601.0
    assert await kept.for_model("openrouter", "u", MODEL, look_up) == ("image",)


def test_chat_modalities() -> None:
    assert chat_modalities(frozenset({"image"})) == ("image",)
    assert chat_modalities(frozenset({"image", "text"})) == ("image", "text")
    assert chat_modalities(frozenset({"text"})) == ("image", "text")
