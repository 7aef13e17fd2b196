"""generate_image keeps the configured image model's rules (review H2), against a fake as
strict as OpenAI's `/images/generations`: the shapes offered are the ones the model draws, each
asked in the model's size (dall-e-3 portrait 1024x1792, dall-e-2 squares only), and `count`
images with dall-e-3 (one per request) are several requests of n=1, each paid for and noted
as its own call. Through the real LlmClient (`openai` SDK) over HTTP."""

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

KEY = "sk-openai-user"
MODELS = {"dall-e-2", "dall-e-3", "gpt-image-1"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(valid_keys={KEY}) as provider:
        provider.image_models = set(MODELS)
        yield provider


@pytest.fixture
async def llm() -> AsyncIterator[LlmClient]:
    client = LlmClient(timeout_seconds=10.0)
    try:
        yield client
    finally:
        await client.aclose()


def painter(llm: LlmClient, model: str, max_count: int = 4) -> GenerateImageSkill:
    fetcher = SafeFetcher(EgressPolicy(allow=frozenset(), timeout=1.0, max_bytes=1024))
    settings = ImageSettings(provider="openai", model=model, endpoint="images", max_count=max_count)
    return GenerateImageSkill(llm, settings, fetcher)


def context(fake: FakeProvider) -> SkillContext:
    async def provider_key(name: str, model: str) -> tuple[Provider, SecretStr]:
        return Provider(name, fake.base_url), SecretStr(KEY)

    return SkillContext(user_id="u-1", personality_id="p-1", provider_key=provider_key)


def paid(model: str, images: int, *, failed: bool = False) -> UsageSpent:
    call = PaidCall(IMAGE_GENERATION, "openai", model, TokenUsage(0, 0, images=images))
    return UsageSpent((call,), failed=failed)


async def draw(
    fake: FakeProvider, llm: LlmClient, model: str, **args: object
) -> tuple[SkillOutput, SkillContext]:
    ctx = context(fake)
    output = await painter(llm, model).run({"prompt": "a lighthouse at dusk", **args}, ctx)
    return output, ctx


async def test_dall_e_3_two_portraits_are_two_requests_each_paid(
    fake: FakeProvider, llm: LlmClient
) -> None:
    output, ctx = await draw(fake, llm, "dall-e-3", size="portrait", count=2)
    assert [f.filename for f in output.files] == ["image-1.png", "image-2.png"]
    assert all(f.data.startswith(b"\x89PNG") for f in output.files)
    asked = [
        (r.body["n"], r.body["size"], r.body["response_format"]) for r in fake.image_requests()
    ]
    assert asked == [(1, "1024x1792", "b64_json")] * 2
    assert ctx.spending.spent == [paid("dall-e-3", 1), paid("dall-e-3", 1)]


async def test_dall_e_3_landscape_is_its_own_size(fake: FakeProvider, llm: LlmClient) -> None:
    output, _ = await draw(fake, llm, "dall-e-3", size="landscape")
    assert len(output.files) == 1
    (request,) = fake.image_requests()
    assert (request.body["n"], request.body["size"]) == (1, "1792x1024")


async def test_dall_e_2_is_offered_squares_only_and_draws_several_at_once(
    fake: FakeProvider, llm: LlmClient
) -> None:
    skill = painter(llm, "dall-e-2")
    assert "size" not in skill.parameters["properties"]
    assert skill.description.endswith("Images are square.")
    output, ctx = await draw(fake, llm, "dall-e-2", size="portrait", count=2)
    assert len(output.files) == 2
    (request,) = fake.image_requests()
    assert (request.body["n"], request.body["size"]) == (2, "1024x1024")
    assert ctx.spending.spent == [paid("dall-e-2", 2)]


async def test_gpt_image_1_gets_its_sizes_and_no_response_format(
    fake: FakeProvider, llm: LlmClient
) -> None:
    skill = painter(llm, "gpt-image-1")
    assert skill.parameters["properties"]["size"]["enum"] == ["square", "portrait", "landscape"]
    output, _ = await draw(fake, llm, "gpt-image-1", size="landscape", count=2)
    assert len(output.files) == 2
    (request,) = fake.image_requests()
    assert (request.body["n"], request.body["size"]) == (2, "1536x1024")
    assert "response_format" not in request.body


async def test_dall_e_3_with_one_request_refused_delivers_the_other(
    fake: FakeProvider, llm: LlmClient
) -> None:
    """The images that were drawn (and paid for) are delivered; the refused request cost
    nothing and is said to the model."""
    fake.fail_next(
        400,
        code="content_policy_violation",
        message="Your request was rejected by the safety system.",
        path="/v1/images/generations",
    )
    output, ctx = await draw(fake, llm, "dall-e-3", count=2)
    assert len(output.files) == 1
    assert "1 more could not be drawn" in output.text
    assert len(fake.image_requests()) == 2
    assert ctx.spending.spent == [paid("dall-e-3", 1)]
