"""A wallet key a skill's service refuses turns inactive even when the reply then fails,
through the whole mesh: Echo draws on Alice's OpenAI key, which OpenAI refuses (401), and
searches the web on her Brave key, which Brave refuses; the next round's answer then fails
(the provider's 502 mid-stream), so no finished reply reports those refusals. Inference's
error names them instead, and `/wallet list` shows both keys inactive all the same, her
OpenRouter key (the answer's, which answered the first round) active."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import grpc
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
    searching on her Brave key (each still valid when she stored it, revoked since). A
    failed round is not tried again: the reply fails at once."""
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
                "provider_max_retries": 0,
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
        provider.valid_keys.discard(OPENAI_KEY)
        brave.tokens.discard(BRAVE_KEY)
        yield h


async def wallet(h: Harness) -> dict[str, bool]:
    listed = await h.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
    return {key.provider: key.active for key in listed.keys}


async def collect(
    stream: AsyncIterable[gw.GenerateResponse], into: list[gw.GenerateResponse]
) -> None:
    async for event in stream:
        into.append(event)


async def test_keys_a_skills_services_refused_turn_inactive_though_the_reply_failed(
    harness: Harness,
) -> None:
    h = harness
    assert await wallet(h) == {"brave": True, "openai": True, "openrouter": True}
    h.provider.enqueue_tool_calls(DRAW, SEARCH)
    h.provider.enqueue(ANSWER)
    h.provider.error_after_chunks = 0  # the answer's round: a 502 before its first word
    events: list[gw.GenerateResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await collect(h.bot.Generate(request("draw and research the moon")), events)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    assert not any(event.HasField("finished") for event in events)
    [drawing] = h.provider.image_requests()
    assert drawing.api_key == OPENAI_KEY  # asked on her key, and refused (401)
    assert len(h.provider.chat_requests()) == 2  # the tool round, then the failed one
    for key in (OPENAI_KEY, BRAVE_KEY, USER_KEY):  # names travel, never a key
        assert key not in (failed.value.details() or "")
        assert key not in str(failed.value.trailing_metadata())
    assert await wallet(h) == {"brave": False, "openai": False, "openrouter": True}
