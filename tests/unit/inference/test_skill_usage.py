"""A skill's paid calls are noted as they are paid (SkillContext.spending), under the provider
and model that bill them, and go to the gateway as UsageSpent: an image call cut off once
sent is noted paid-not-delivered, a Brave search that answered is a paid request, and the
event survives the trip through both services' converters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2 as httpx
import pytest
from pydantic import SecretStr

from tzurot.gateway import convert as gateway_convert
from tzurot.gateway import domain as g
from tzurot.inference import convert as inference_convert
from tzurot.inference.domain import (
    IMAGE_GENERATION,
    WEB_SEARCH,
    ImageAnswer,
    PaidCall,
    TokenUsage,
    UsageSpent,
)
from tzurot.inference.providers import Provider, ProviderRegistry
from tzurot.inference.skills.base import SkillContext
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings
from tzurot.inference.skills.search import BraveSearch
from tzurot.testing.fake_web import FakeBrave

BRAVE_KEY = "BSAfakeBraveKey123"
PROVIDER = ProviderRegistry({"openrouter": "http://127.0.0.1:9"}).get("openrouter")


class SlowImages:
    """An image model still drawing: its request is out, no answer yet."""

    def __init__(self) -> None:
        self.sent = asyncio.Event()

    async def chat_images(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        prompt: str,
        aspect_ratio: str | None,
    ) -> ImageAnswer:
        self.sent.set()
        await asyncio.sleep(60)
        raise AssertionError("cut off before")

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
        return await self.chat_images(
            provider, api_key, model=model, prompt=prompt, aspect_ratio=None
        )


async def key_for(name: str, model: str) -> tuple[Provider, SecretStr]:
    return PROVIDER, SecretStr("sk-or-test")


def painter(images: SlowImages, endpoint: str = "chat") -> GenerateImageSkill:
    fetcher = SafeFetcher(EgressPolicy(allow=frozenset(), timeout=1.0, max_bytes=1024))
    settings = ImageSettings(model="google/gemini-2.5-flash-image", endpoint=endpoint)  # type: ignore[arg-type]
    return GenerateImageSkill(images, settings, fetcher)


@pytest.mark.parametrize(("endpoint", "asked"), [("chat", [1, 1]), ("images", [2])])
async def test_an_image_call_cut_off_once_sent_is_noted_paid_not_delivered(
    endpoint: str, asked: list[int]
) -> None:
    """The loop's time limit cancels a drawing whose requests are out: the provider may have
    drawn and billed them, so each is noted (failed) with the images it asked for, no tokens
    (a chat request asks for one image, so two images are two requests)."""
    images = SlowImages()
    ctx = SkillContext(user_id="u-1", personality_id="p-1", provider_key=key_for)
    run = asyncio.create_task(painter(images, endpoint).run({"prompt": "a moon", "count": 2}, ctx))
    await images.sent.wait()
    await asyncio.sleep(0)  # every request is out
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    model = "google/gemini-2.5-flash-image"
    assert ctx.spending.spent == [
        UsageSpent(
            (PaidCall(IMAGE_GENERATION, "openrouter", model, TokenUsage(0, 0, images=n)),),
            failed=True,
        )
        for n in asked
    ]


async def test_an_image_call_cancelled_before_it_was_sent_is_not_noted() -> None:
    async def no_key_yet(name: str, model: str) -> tuple[Provider, SecretStr]:
        await asyncio.sleep(60)
        raise AssertionError("cut off before")

    ctx = SkillContext(user_id="u-1", personality_id="p-1", provider_key=no_key_yet)
    run = asyncio.create_task(painter(SlowImages()).run({"prompt": "a moon"}, ctx))
    await asyncio.sleep(0.01)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert ctx.spending.spent == []


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def test_a_brave_search_that_answered_is_one_paid_request(http: httpx.AsyncClient) -> None:
    async def wallet(name: str) -> SecretStr | None:
        return SecretStr(BRAVE_KEY)

    ctx = SkillContext(user_id="u-1", personality_id="p-1", wallet_key=wallet)
    async with FakeBrave({BRAVE_KEY}) as brave:
        brave.add_result("Found", "http://example.test/found", "A hit.")
        await BraveSearch(http, brave.base_url).search("moon", 3, ctx)
        await BraveSearch(http, brave.base_url).search("sun", 3, ctx)
    search = UsageSpent((PaidCall(WEB_SEARCH, "brave", "", TokenUsage(0, 0)),))
    assert ctx.spending.spent == [search, search]


def test_usage_spent_reaches_the_gateway_as_sent() -> None:
    image = PaidCall(IMAGE_GENERATION, "openrouter", "x/draw", TokenUsage(10, 1290, images=1))
    answer = PaidCall("", "openrouter", "x/chat", TokenUsage(300, 20))
    for event, expected in [
        (
            UsageSpent((image,)),
            g.UsageSpent(
                (
                    g.Usage(
                        "openrouter", "x/draw", 10, 1290, images=1, request_type=IMAGE_GENERATION
                    ),
                )
            ),
        ),
        (
            UsageSpent((answer,), failed=True),
            g.UsageSpent((g.Usage("openrouter", "x/chat", 300, 20),), failed=True),
        ),
    ]:
        wire = inference_convert.reply_event(event)
        assert wire.WhichOneof("event") == "usage_spent"
        assert gateway_convert.reply_event(wire) == expected
