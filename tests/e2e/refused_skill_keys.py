"""The mesh the skill-key refusal tests share: Echo with skills, answering on Alice's
OpenRouter key, drawing on her OpenAI key and searching on her Brave key, each still valid
when she stored it and revoked since (OpenAI refuses it with 401, Brave likewise)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tzurot.testing.e2e import USER_KEY, Harness, actor, echo_mesh, set_key
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.fake_tools import ToolCallSpec
from tzurot.testing.fake_web import FakeBrave
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

OPENAI_KEY = "sk-openai-user-key-0123456789abcdef"
BRAVE_KEY = "BSAaliceBraveKey0q7f3e9c1x"
DRAW = ToolCallSpec("generate_image", {"prompt": "a red moon over a dark sea"})
SEARCH = ToolCallSpec("web_research", {"query": "moon base"})
ANSWER = "I could neither draw nor search, darling."


@asynccontextmanager
async def refused_skill_keys(
    database_url: str, workdir: Path, *, inference: Mapping[str, Any] | None = None
) -> AsyncIterator[Harness]:
    """The mesh, with Alice's three keys stored and the OpenAI and Brave ones revoked since;
    `inference`: settings added to the skills' (image model, Brave search)."""
    async with (
        FakeProvider(valid_keys={USER_KEY, OPENAI_KEY}, any_model=True) as provider,
        FakeBrave({BRAVE_KEY}) as brave,
        echo_mesh(
            database_url,
            workdir,
            provider=provider,
            inference={
                "image_provider": "openai",
                "image_model": "fake/draw",
                "search_backend": "brave",
                "brave_url": brave.base_url,
                **(inference or {}),
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
    """Alice's keys as `/wallet list` shows them: provider -> active."""
    listed = await h.bot.ListWalletKeys(gw.ListWalletKeysRequest(actor=actor()))
    return {key.provider: key.active for key in listed.keys}
