"""generate_image's `count` on the chat endpoint, where an answer carries one image: `count`
requests at once (at most `REQUESTS_AT_ONCE` out together). Cut off by the loop's time limit
while one has answered and another is still out, both are noted paid and not delivered; an
answer with no image (the model wrote instead of drawing) is paid for, noted not delivered,
and the model is told one could not be drawn."""

from __future__ import annotations

import asyncio
import base64

import pytest
from pydantic import SecretStr

from tzurot.inference.domain import IMAGE_GENERATION, ImageAnswer, PaidCall, TokenUsage, UsageSpent
from tzurot.inference.providers import Provider
from tzurot.inference.skills.base import SkillContext
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.generate_image import (
    REQUESTS_AT_ONCE,
    GenerateImageSkill,
    ImageSettings,
)
from tzurot.testing.fake_tools import tiny_png

PROVIDER = Provider("openrouter", "http://127.0.0.1:9/v1")
MODEL = "google/gemini-2.5-flash-image"
PNG = "data:image/png;base64," + base64.b64encode(tiny_png("a moon")).decode()


class ChatImages:
    """A chat image model: `answers` in order, then requests that never answer."""

    def __init__(self, *answers: ImageAnswer) -> None:
        self.answers = list(answers)
        self.sent = 0
        self.out = self.most_out = 0
        self.answered = asyncio.Event()
        self.sent_enough = asyncio.Event()

    async def chat_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str | None,
    ) -> ImageAnswer:
        self.sent += 1
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        answer = self.answers.pop(0) if self.answers else None
        try:
            if answer is not None:
                await asyncio.sleep(0.01)
                self.answered.set()
                return answer
            self.sent_enough.set()
            await asyncio.sleep(60)
            raise AssertionError("cut off before")
        finally:
            self.out -= 1

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
    return PROVIDER, SecretStr("sk-user")


def skill(images: ChatImages, max_count: int = 2) -> GenerateImageSkill:
    fetcher = SafeFetcher(EgressPolicy(allow=frozenset(), timeout=1.0, max_bytes=1024))
    settings = ImageSettings("openrouter", MODEL, endpoint="chat", max_count=max_count)
    return GenerateImageSkill(images, settings, fetcher)


def context() -> SkillContext:
    return SkillContext(user_id="u-1", personality_id="p-1", provider_key=key_for)


def noted(usage: TokenUsage, *, failed: bool) -> UsageSpent:
    return UsageSpent((PaidCall(IMAGE_GENERATION, "openrouter", MODEL, usage),), failed=failed)


async def test_two_chat_requests_cut_off_are_both_noted_paid_not_delivered() -> None:
    images = ChatImages(ImageAnswer((PNG,), TokenUsage(7, 9)))
    ctx = context()
    run = asyncio.create_task(skill(images).run({"prompt": "a moon", "count": 2}, ctx))
    await asyncio.wait_for(images.sent_enough.wait(), 5)  # one request per image
    await asyncio.wait_for(images.answered.wait(), 5)
    await asyncio.sleep(0)  # the first answer is in hand
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert images.sent == 2
    assert sorted(ctx.spending.spent, key=repr) == sorted(
        [
            noted(TokenUsage(7, 9, images=1), failed=True),
            noted(TokenUsage(0, 0, images=1), failed=True),
        ],
        key=repr,
    )


async def test_an_answer_without_an_image_is_paid_and_the_model_told_one_was_not_drawn() -> None:
    images = ChatImages(
        ImageAnswer((PNG,), TokenUsage(10, 1290)),
        ImageAnswer((), TokenUsage(10, 12)),  # "I can't draw that", no image
    )
    ctx = context()
    output = await skill(images).run({"prompt": "a moon", "count": 2}, ctx)
    assert len(output.files) == 1
    assert "1 more could not be drawn" in output.text
    assert ctx.spending.spent == [
        noted(TokenUsage(10, 1290, images=1), failed=False),
        noted(TokenUsage(10, 12, images=0), failed=True),
    ]


async def test_at_most_requests_at_once_are_out_together() -> None:
    count = REQUESTS_AT_ONCE + 2
    images = ChatImages(*(ImageAnswer((PNG,), TokenUsage(1, 1)) for _ in range(count)))
    painter = skill(images, max_count=count)
    output = await painter.run({"prompt": "moons", "count": count}, context())
    assert len(output.files) == count
    assert images.sent == count
    assert images.most_out == REQUESTS_AT_ONCE
