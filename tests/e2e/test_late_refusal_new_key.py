"""A refusal that comes after the user stored a new key marks only the key that was refused,
through the whole mesh: Echo draws on Alice's OpenAI key and searches on her Brave key K1,
both revoked; Brave holds its answer to K1, and meanwhile she stores a new Brave key K2
(`/wallet set brave`), which Brave takes. Then Brave refuses K1: the gateway marks the
refusal with the reply's start as the earliest time the key was read, and keyvault leaves
K2, stored after it, active; her OpenAI key, refused and not replaced, reads inactive.
Before, the refusal marked whatever Brave key was stored: the working K2 read inactive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests.e2e.refused_skill_keys import BRAVE_KEY, DRAW, SEARCH, refused_skill_keys, wallet
from tzurot.testing.e2e import Harness, actor, request
from tzurot.testing.fake_web import FakeBrave
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

NEW_BRAVE_KEY = "BSAaliceNewBraveKey5t8w2r4p"


class HeldBrave:
    """Brave's answers to the revoked K1 wait for `release`; `asked` once one does."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.release = asyncio.Event()
        self.brave: FakeBrave | None = None


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldBrave:
    held = HeldBrave()
    search: Callable[[FakeBrave, web.Request], Awaitable[web.StreamResponse]] = FakeBrave._search

    async def held_search(self: FakeBrave, req: web.Request) -> web.StreamResponse:
        held.brave = self
        if req.headers.get("X-Subscription-Token") == BRAVE_KEY:
            held.asked.set()
            await held.release.wait()
        return await search(self, req)

    monkeypatch.setattr(FakeBrave, "_search", held_search)  # bound as the server starts
    return held


@pytest.fixture
async def harness(
    fresh_database: DatabaseFactory, tmp_path: Path, held: HeldBrave
) -> AsyncIterator[Harness]:
    async with refused_skill_keys(fresh_database(), tmp_path) as h:
        yield h


async def test_a_late_refusal_of_the_old_key_leaves_the_new_one_active(
    harness: Harness, held: HeldBrave
) -> None:
    h = harness
    h.provider.enqueue_tool_calls(DRAW, SEARCH)
    h.provider.enqueue("Nothing drawn, nothing found, darling.")

    async def generate() -> None:
        async for _ in h.bot.Generate(request("draw and research the moon"), timeout=120):
            pass

    running = asyncio.ensure_future(generate())
    try:
        async with asyncio.timeout(30):
            await held.asked.wait()  # inference read K1 and asked Brave with it
        assert held.brave is not None
        held.brave.tokens.add(NEW_BRAVE_KEY)
        stored = await h.bot.SetWalletKey(
            gw.SetWalletKeyRequest(actor=actor(), provider="brave", api_key=NEW_BRAVE_KEY)
        )
        assert stored.key.hint == NEW_BRAVE_KEY[-4:]
        held.release.set()  # now Brave refuses K1
        async with asyncio.timeout(60):
            await running
    finally:
        held.release.set()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    keys = await wallet(h)  # each refusal was sent as it came (KeyRefused), before the end
    assert keys == {"brave": True, "openai": False, "openrouter": True}
