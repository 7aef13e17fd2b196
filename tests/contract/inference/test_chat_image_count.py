"""generate_image on the chat endpoint (OpenRouter's image models, `modalities: ["image",
"text"]`): OpenRouter documents no `n` there, an answer carries the image it drew, so `count`
images are `count` chat requests at once, each paid for and noted as its own call; the
images that came are delivered when another request fails, and the model is told how many
could not be drawn. Through the real LlmClient over HTTP, against the fake provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from tzurot.inference.domain import IMAGE_GENERATION, PaidCall, TokenUsage, UsageSpent
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import Provider
from tzurot.inference.skills.base import SkillContext, SkillOutput
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings
from tzurot.testing.fake_provider import FakeProvider

pytestmark = pytest.mark.contract

KEY = "sk-or-user"
MODEL = "google/gemini-2.5-flash-image"
BILLED = TokenUsage(10, 1290, images=1)
"""What the fake's image answer says it billed: its `usage`, and the one image it drew."""


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}, any_model=True) as provider:
        provider.image_models.add(MODEL)
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


def noted(usage: TokenUsage, *, failed: bool = False) -> UsageSpent:
    return UsageSpent((PaidCall(IMAGE_GENERATION, "openrouter", MODEL, usage),), failed=failed)


async def draw(fake: FakeProvider, llm: LlmClient, count: int) -> tuple[SkillOutput, SkillContext]:
    async def provider_key(name: str, model: str) -> tuple[Provider, SecretStr]:
        return Provider(name, fake.base_url), SecretStr(KEY)

    fetcher = SafeFetcher(EgressPolicy(allow=frozenset(), timeout=1.0, max_bytes=1024))
    settings = ImageSettings(provider="openrouter", model=MODEL, endpoint="chat", max_count=4)
    skill = GenerateImageSkill(llm, settings, fetcher)
    ctx = SkillContext(user_id="u-1", personality_id="p-1", provider_key=provider_key)
    output = await skill.run({"prompt": "a lighthouse at dusk", "count": count}, ctx)
    return output, ctx


async def test_two_images_are_two_chat_requests_both_delivered_and_each_paid(
    fake: FakeProvider, llm: LlmClient
) -> None:
    output, ctx = await draw(fake, llm, 2)
    assert [f.filename for f in output.files] == ["image-1.png", "image-2.png"]
    assert all(f.data.startswith(b"\x89PNG") for f in output.files)
    assert output.text.startswith("Drew 2 images of: a lighthouse at dusk.")
    asked = fake.chat_requests()
    assert [r.body["modalities"] for r in asked] == [["image", "text"]] * 2
    assert all("n" not in r.body and r.api_key == KEY for r in asked)
    assert ctx.spending.spent == [noted(BILLED), noted(BILLED)]


async def test_one_of_three_refused_delivers_the_two_drawn_and_says_one_was_not(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """The refused request cost nothing and is said to the model; the two drawn (and paid
    for) are delivered."""
    fake.flag_next()
    output, ctx = await draw(fake, llm, 3)
    assert len(output.files) == 2
    assert "1 more could not be drawn" in output.text
    assert len(fake.chat_requests()) == 3
    assert ctx.spending.spent == [noted(BILLED), noted(BILLED)]
