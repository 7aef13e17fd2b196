"""generate_image on an `/images/generations` provider (review 158 M2): DALL-E is asked for
base64; an image answered as a URL is fetched with the image's limit (5 MiB), not read_url's
(2 MiB), so a 3 MiB image paid for is delivered; one that cannot be delivered is noted paid
and not delivered (failed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import Provider
from tzurot.inference.skills.base import SkillContext, SkillError
from tzurot.inference.skills.egress import EgressPolicy, SafeFetcher
from tzurot.inference.skills.generate_image import GenerateImageSkill, ImageSettings

pytestmark = pytest.mark.contract

MIB = 1024 * 1024


@dataclass
class Images:
    base: str
    origin: str
    png_bytes: int = 3 * MIB
    asked: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def images() -> AsyncIterator[Images]:
    state: Images | None = None

    async def generations(request: web.Request) -> web.Response:
        assert state is not None
        state.asked.append(await request.json())
        return web.json_response({"created": 0, "data": [{"url": f"{state.base}/img.png"}]})

    async def picture(request: web.Request) -> web.Response:
        assert state is not None
        body = b"\x89PNG\r\n\x1a\n" + b"\0" * state.png_bytes
        return web.Response(body=body, content_type="image/png")

    app = web.Application()
    app.router.add_post("/v1/images/generations", generations)
    app.router.add_get("/img.png", picture)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state = Images(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}")
    try:
        yield state
    finally:
        await runner.cleanup()


async def draw(images: Images, model: str) -> tuple[SkillContext, Any]:
    # read_url's fetcher as app.py makes it: 2 MiB a page.
    fetcher = SafeFetcher(EgressPolicy(max_bytes=2 * MIB, allow=frozenset({images.origin})))
    llm = LlmClient(timeout_seconds=10)
    skill = GenerateImageSkill(
        llm,
        ImageSettings(provider="openai", model=model, endpoint="images", max_bytes=5 * MIB),
        fetcher,
    )

    async def provider_key(name: str, model: str) -> tuple[Provider, SecretStr]:
        return Provider(name, f"{images.base}/v1"), SecretStr("sk-user")

    ctx = SkillContext(user_id="u", personality_id="p", provider_key=provider_key)
    try:
        return ctx, await skill.run({"prompt": "a lighthouse at dusk"}, ctx)
    except SkillError as exc:
        return ctx, exc
    finally:
        await llm.aclose()


async def test_a_3_mib_image_answered_as_a_url_is_delivered(images: Images) -> None:
    ctx, out = await draw(images, "dall-e-3")
    assert not isinstance(out, SkillError), out
    (image,) = out.files
    assert len(image.data) > 3 * MIB
    (spent,) = ctx.spending.spent
    assert not spent.failed


@pytest.mark.parametrize(
    ("model", "asked"), [("dall-e-3", "b64_json"), ("dall-e-2", "b64_json"), ("gpt-image-1", None)]
)
async def test_dall_e_is_asked_for_base64_and_gpt_image_is_not(
    images: Images, model: str, asked: str | None
) -> None:
    await draw(images, model)
    assert images.asked[0].get("response_format") == asked


async def test_an_image_that_cannot_be_delivered_is_noted_paid_not_delivered(
    images: Images,
) -> None:
    images.png_bytes = 6 * MIB
    ctx, out = await draw(images, "dall-e-3")
    assert isinstance(out, SkillError)
    assert "nothing to attach" in str(out)
    (spent,) = ctx.spending.spent
    assert spent.failed
    assert spent.paid[0].usage.images == 1
