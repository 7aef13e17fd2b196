"""dall-e-3 draws one image per request, so `count: 2` is two requests at once (review H2).
Cut off by the loop's time limit while one has answered and the other is still out, both
are noted paid and not delivered: the answered one with the tokens and images it billed, the
one still out with the image it asked for."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from tzurot.inference.domain import IMAGE_GENERATION, ImageAnswer, PaidCall, TokenUsage, UsageSpent
from tzurot.inference.providers import Provider
from tzurot.inference.skills.base import SkillContext
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings

PROVIDER = Provider("openai", "http://127.0.0.1:9/v1")


class OneQuickOneSlow:
    """The first request answers at once; the next ones are still drawing."""

    def __init__(self) -> None:
        self.sizes: list[tuple[int, str]] = []
        self.both_sent = asyncio.Event()

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
        self.sizes.append((count, size))
        if len(self.sizes) == 2:
            self.both_sent.set()
        if len(self.sizes) == 1:
            return ImageAnswer(("data:image/png;base64,AAAA",), TokenUsage(7, 9))
        await asyncio.sleep(60)
        raise AssertionError("cut off before")


async def key_for(name: str, model: str) -> tuple[Provider, SecretStr]:
    return PROVIDER, SecretStr("sk-user")


async def test_two_dall_e_3_requests_cut_off_are_both_noted_paid_not_delivered() -> None:
    images = OneQuickOneSlow()
    fetcher = SafeFetcher(EgressPolicy(allow=frozenset(), timeout=1.0, max_bytes=1024))
    skill = GenerateImageSkill(
        images, ImageSettings(provider="openai", model="dall-e-3", endpoint="images"), fetcher
    )
    ctx = SkillContext(user_id="u-1", personality_id="p-1", provider_key=key_for)
    run = asyncio.create_task(skill.run({"prompt": "a moon", "count": 2, "size": "portrait"}, ctx))
    await asyncio.wait_for(images.both_sent.wait(), 5)  # one request per image
    await asyncio.sleep(0)  # the first answer is in hand
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert images.sizes == [(1, "1024x1792"), (1, "1024x1792")]

    def noted(usage: TokenUsage) -> UsageSpent:
        return UsageSpent((PaidCall(IMAGE_GENERATION, "openai", "dall-e-3", usage),), failed=True)

    assert sorted(ctx.spending.spent, key=repr) == sorted(
        [noted(TokenUsage(7, 9, images=1)), noted(TokenUsage(0, 0, images=1))], key=repr
    )
