"""A wallet key a skill's service refuses turns inactive, though the reply goes on, through
the whole mesh: Echo draws on Alice's OpenAI key, which OpenAI refuses (401), and searches
the web on her Brave key, which Brave refuses; the model answers without them, and
`/wallet list` then shows both keys inactive (not "used" by this reply), her OpenRouter key
(the answer's) active, as after any refused key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tzurot.testing.e2e import USER_KEY, Harness, actor, echo_mesh, request, set_key
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.testing.fake_web import FakeBrave
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-openai-user-key-0123456789abcdef"
BRAVE_KEY = "BSAaliceBraveKey0q7f3e9c1x"
DRAW = ToolCallSpec("generate_image", {"prompt": "a red moon over a dark sea"})
SEARCH = ToolCallSpec("web_research", {"query": "moon base"})
ANSWER = "I could neither draw nor search, darling."


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    """Echo with skills, answering on Alice's OpenRouter key, drawing on her OpenAI key and
    searching on her Brave key (each still valid when she stored it)."""
    async with (
        FakeProvider(valid_keys={USER_KEY, OPENAI_KEY}, any_model=True) as provider,
        FakeBrave({BRAVE_KEY}) as brave,
        echo_mesh(
            fresh_database(),
            tmp_path,
            provider=provider,
            inference={
                "image_provider": "openai",
                "image_model": "fake/draw",
                "search_backend": "brave",
                "brave_url": brave.base_url,
            },
        ) as h,
    ):
        provider.image_models.add("fake/draw")
        await h.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(
                    slug="echo", skills=["generate_image", "web_research"]
                ),
                update_paths=["skills"],
            )
        )
        await set_key(h)
        for provider_name, key in (("openai", OPENAI_KEY), ("brave", BRAVE_KEY)):
            await h.bot.SetWalletKey(
                gw.SetWalletKeyRequest(actor=actor(), provider=provider_name, api_key=key)
            )
        provider.valid_keys.discard(OPENAI_KEY)  # Alice revoked them since
        brave.tokens.discard(BRAVE_KEY)
        yield h


async def wallet(h: Harness) -> dict[str, bool]:
    listed = await h.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
    return {key.provider: key.active for key in listed.keys}


async def test_keys_a_skills_services_refused_turn_inactive_and_the_answer_goes_on(
    harness: Harness,
) -> None:
    h = harness
    assert await wallet(h) == {"brave": True, "openai": True, "openrouter": True}
    h.provider.enqueue_tool_calls(DRAW, SEARCH)
    h.provider.enqueue(ANSWER)
    events = [event async for event in h.bot.Generate(request("draw and research the moon"))]
    finished = events[-1].finished
    assert finished.content == ANSWER
    assert finished.usage.provider == "openrouter"
    # The drawing was asked for on her OpenAI key and refused (401): nothing was drawn.
    [drawing] = h.provider.image_requests()
    assert drawing.api_key == OPENAI_KEY
    assert not finished.files
    assert await wallet(h) == {"brave": False, "openai": False, "openrouter": True}
