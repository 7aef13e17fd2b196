"""The bot's PluralKit client against the fake PluralKit over HTTP, where PluralKit's message
scope is shared by everything on one address (other shards, other apps): a lookup that meets
the spent limit still gets its answer, as PluralKit's 429s allow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import httpx2 as httpx
import pytest

from tzurot.bot.pluralkit import PluralKit
from tzurot.testing.fake_discord import FakePluralKit

SENDER = {"id": "42", "username": "alice"}


@pytest.fixture
async def pk() -> AsyncIterator[FakePluralKit]:
    async with FakePluralKit() as fake:
        for n in range(40):
            fake.register(1000 + n, SENDER, "Fox")
        yield fake


async def test_a_lookup_after_the_address_spent_its_limit_is_answered(pk: FakePluralKit) -> None:
    """PluralKit runs a request only while one more remains after it: a client that comes
    back exactly when `retry_after` says meets a 429 again (and is counted for it)."""
    async with httpx.AsyncClient() as other:  # another app on the same address
        for _ in range(10):
            await other.get(f"{pk.base_url}/messages/1", headers={"User-Agent": "other"})
    async with aiohttp.ClientSession() as session:
        found = await PluralKit(session, pk.base_url, retry_delay=0).record(1000, retry=False)
    assert found is not None
    assert found.sender == "42"
    assert pk.refused.count(429) <= 2  # the other app's tenth, then ours once


async def test_two_shards_on_one_address_each_get_every_answer(pk: FakePluralKit) -> None:
    async with aiohttp.ClientSession() as session:
        shards = [PluralKit(session, pk.base_url, retry_delay=0) for _ in range(2)]
        found = await asyncio.gather(*(shards[n % 2].record(1000 + n) for n in range(20)))
    assert all(f is not None for f in found)
    assert 429 in pk.refused  # they did meet PluralKit's limit


async def test_lookups_meeting_a_stricter_limit_wait_together_not_in_turn() -> None:
    """At 3 a second (PluralKit's update scope), nine lookups at once: each refusal counts
    against the limit, so lookups that each retried on their own kept one another refused
    until they gave up. A 429 pauses every lookup, and the stated limit lowers the rate."""
    async with FakePluralKit(rate=(3, 1.0)) as fake, aiohttp.ClientSession() as session:
        for n in range(9):
            fake.register(2000 + n, SENDER, "Fox")
        client = PluralKit(session, fake.base_url, retry_delay=0)
        found = await asyncio.gather(*(client.record(2000 + n, retry=False) for n in range(9)))
    assert all(f is not None for f in found)
    assert fake.refused.count(429) <= 8  # the first burst's, before PluralKit stated its limit
