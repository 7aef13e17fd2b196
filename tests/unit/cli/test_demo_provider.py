"""`tzurot up --demo`'s fake provider: its address is known at once, it serves what comes
before it has finished loading, and it is gone once `up` leaves."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tzurot.cli.demo import demo_provider


async def test_a_request_sent_as_soon_as_the_address_is_known_is_answered() -> None:
    async with demo_provider() as env, aiohttp.ClientSession() as client:
        base_url = json.loads(env["TZUROT_PROVIDERS"])["openrouter"]
        # Sent at once: the fake is still loading in its thread; the request waits for it.
        async with client.post(
            f"{base_url}/chat/completions",
            json={"model": "any/model", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer sk-anything"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as reply:
            status, body = reply.status, await reply.json()
    assert status == 200
    assert body["choices"][0]["message"]["content"].endswith("I heard: hi")
    assert set(json.loads(env["TZUROT_SYSTEM_KEYS"])) == set(json.loads(env["TZUROT_PROVIDERS"]))


async def test_the_address_is_closed_once_up_leaves() -> None:
    async with demo_provider() as env:
        base_url = json.loads(env["TZUROT_PROVIDERS"])["openai"]
    async with aiohttp.ClientSession() as client:
        with pytest.raises(aiohttp.ClientConnectorError):
            await client.get(f"{base_url}/models")


async def test_the_fake_loads_only_once_the_mesh_is_ready() -> None:
    """`up` hands in its ready event: a request sent before waits, and is answered after."""
    ready = asyncio.Event()
    async with demo_provider(load_after=ready) as env, aiohttp.ClientSession() as client:
        base_url = json.loads(env["TZUROT_PROVIDERS"])["openrouter"]
        sent = asyncio.ensure_future(
            client.post(
                f"{base_url}/chat/completions",
                json={"model": "any/model", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": "Bearer sk-anything"},
                timeout=aiohttp.ClientTimeout(total=30),
            )
        )
        done, _ = await asyncio.wait({sent}, timeout=1.0)
        assert not done  # not served before the mesh is ready
        ready.set()
        async with await sent as reply:
            assert reply.status == 200
