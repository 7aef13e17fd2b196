"""An image request that went out and got no answer in time (NoAnswerInTime: the provider
may be drawing, and billing) is noted paid and not delivered, as one cut off by the loop's
time limit is: the images it asked for, no tokens (the answer never came). With dall-e-3 a
`count` is one request per image, so each unanswered one is noted."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from tzurot.inference.domain import IMAGE_GENERATION, ImageAnswer, PaidCall, TokenUsage, UsageSpent
from tzurot.inference.providers import Provider
from tzurot.inference.retries import NoAnswerInTime
from tzurot.inference.skills.base import SkillContext
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings
from tzurot.testing.fake_tools import tiny_png

PROVIDER = Provider("openai", "http://127.0.0.1:9/v1")
PNG = "data:image/png;base64," + base64.b64encode(tiny_png("a moon")).decode()


class Unanswered:
    """The first `answered` requests answer; the next ones time out once sent."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.sent = 0

    async def chat_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str | None,
    ) -> ImageAnswer:
        raise AssertionError("the images endpoint is configured")

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
        self.sent += 1
        if self.sent <= self.answered:
            return ImageAnswer((PNG,), TokenUsage(7, 9))
        raise NoAnswerInTime(
            "openai did not answer in time; try again later",
            reason="PROVIDER_UNAVAILABLE",
            metadata={"provider": "openai"},
        )


async def key_for(name: str, model: str) -> tuple[Provider, SecretStr]:
    return PROVIDER, SecretStr("sk-user")


def skill_for(images: Unanswered) -> GenerateImageSkill:
    fetcher = SafeFetcher(EgressPolicy(allow=frozenset(), timeout=1.0, max_bytes=1024))
    settings = ImageSettings(provider="openai", model="dall-e-3", endpoint="images")
    return GenerateImageSkill(images, settings, fetcher)


def noted(usage: TokenUsage, *, failed: bool) -> UsageSpent:
    return UsageSpent((PaidCall(IMAGE_GENERATION, "openai", "dall-e-3", usage),), failed=failed)


async def test_every_unanswered_image_request_is_noted_paid_not_delivered() -> None:
    images = Unanswered(answered=0)
    ctx = SkillContext(user_id="u-1", personality_id="p-1", provider_key=key_for)
    with pytest.raises(NoAnswerInTime):
        await skill_for(images).run({"prompt": "a moon", "count": 2}, ctx)
    assert images.sent == 2  # never asked again: the provider may be drawing
    assert ctx.spending.spent == [noted(TokenUsage(0, 0, images=1), failed=True)] * 2


async def test_an_unanswered_request_beside_an_answered_one_is_noted_too() -> None:
    images = Unanswered(answered=1)
    ctx = SkillContext(user_id="u-1", personality_id="p-1", provider_key=key_for)
    output = await skill_for(images).run({"prompt": "a moon", "count": 2}, ctx)
    assert len(output.files) == 1
    assert sorted(ctx.spending.spent, key=repr) == sorted(
        [
            noted(TokenUsage(0, 0, images=1), failed=True),
            noted(TokenUsage(7, 9, images=1), failed=False),
        ],
        key=repr,
    )
