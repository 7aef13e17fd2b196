"""The configured vendor models' own rules, through the whole mesh against a fake as strict as
the vendors (review H2, M2): Echo draws with dall-e-3 on Alice's OpenAI key, two portraits
asked in one call are two requests of n=1 in dall-e-3's portrait size, both attached and both
in her usage; Gem answers on Gemini 2.5 Pro with thinking "off", which that model cannot do,
so it is sent the least budget it takes (128) and answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tzurot.testing.e2e import ECHO_SEED, USER_KEY, Harness, actor, request, set_key
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.testing.mesh import in_process_mesh
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-openai-user-key-0123456789abcdef"
GEMINI_KEY = "AIzaGeminiUserKey0123456789abcdef"
GEM_SEED = b"""
name: Gem
system_prompt: You are Gem, who answers briefly.
llm:
  provider: gemini
  model: gemini-2.5-pro
  advanced_parameters: {thinking_level: "off"}
"""


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with (
        FakeProvider(valid_keys={USER_KEY, OPENAI_KEY, GEMINI_KEY}, any_model=True) as fake,
        in_process_mesh(
            fresh_database(),
            tmp_path,
            fake,
            providers={"gemini": fake.base_url},
            inference={"image_provider": "openai", "image_model": "dall-e-3"},
        ) as mesh,
    ):
        cli = await mesh.gateway_stub("cli")
        h = Harness(mesh, fake, await mesh.gateway_stub("bot"), cli)
        for seed in (ECHO_SEED, GEM_SEED):
            await cli.ImportPersonality(
                gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=seed)
            )
        fake.image_models.add("dall-e-3")
        await h.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug="echo", skills=["generate_image"]),
                update_paths=["skills"],
            )
        )
        await set_key(h)
        for provider, key in (("openai", OPENAI_KEY), ("gemini", GEMINI_KEY)):
            await h.bot.SetWalletKey(
                gw.SetWalletKeyRequest(actor=actor(), provider=provider, api_key=key)
            )
        yield h


async def images_used(h: Harness) -> int:
    usage = await h.bot.GetUsage(gw.GetUsageRequest(actor=actor(), period=gw.USAGE_PERIOD_DAY))
    return sum(t.images for t in usage.totals)


async def test_two_dall_e_3_portraits_are_two_requests_both_delivered_and_counted(
    harness: Harness,
) -> None:
    h = harness
    draw = {"prompt": "a lighthouse at dusk", "count": 2, "size": "portrait"}
    h.provider.enqueue_tool_calls(ToolCallSpec("generate_image", draw))
    h.provider.enqueue("Two lighthouses for you.")
    events = [event async for event in h.bot.Generate(request("draw two lighthouses"))]
    finished = events[-1].finished
    assert finished.content == "Two lighthouses for you."
    assert len(finished.files) == 2
    assert all(f.data.startswith(b"\x89PNG") for f in finished.files)
    drawn = h.provider.image_requests()
    assert [(r.body["n"], r.body["size"], r.api_key) for r in drawn] == [
        (1, "1024x1792", OPENAI_KEY)
    ] * 2
    assert await images_used(h) == 2


async def test_gemini_2_5_pro_with_thinking_off_is_sent_its_least_budget(
    harness: Harness,
) -> None:
    h = harness
    h.provider.enqueue("Hello from Gem.")
    req = request("hello Gem")
    req.personality = "Gem"
    events = [event async for event in h.bot.Generate(req)]
    assert events[-1].finished.content == "Hello from Gem."
    (asked,) = [r for r in h.provider.chat_requests() if r.body["model"] == "gemini-2.5-pro"]
    assert asked.api_key == GEMINI_KEY
    assert asked.body["extra_body"]["google"]["thinking_config"] == {
        "include_thoughts": False,
        "thinking_budget": 128,
    }
