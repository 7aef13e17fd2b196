"""A gateway connection that does not heartbeat in time is closed (events/gateway.mdx "Sending
Heartbeats": "your connection will be closed and you will be forced to Resume"); one that
heartbeats stays open, and discord.py's heartbeating keeps its connection."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.unit.bot.test_unfinished_on_discord import connected
from tests.unit.testing.test_fake_discord_gateway import identify, receive
from tzurot.testing.fake_discord import FakeDiscord
from tzurot.testing.fake_discord.gateway import HEARTBEAT_MISSED


async def test_a_connection_without_heartbeats_is_closed_and_may_resume() -> None:
    async with FakeDiscord(heartbeat_interval_ms=200) as fake, aiohttp.ClientSession() as session:
        ws, ready = await identify(session, fake, [0, 1])
        session_id = ready["d"]["session_id"]
        frame = await receive(ws)  # GUILD_CREATE frames would come first: none here
        assert frame == {"closed": HEARTBEAT_MISSED}
        assert fake.heartbeat_timeouts == [session_id]
        again = await session.ws_connect(fake.gateway_url)
        assert (await receive(again))["op"] == 10
        resume = {"token": fake.token, "session_id": session_id, "seq": ready["s"]}
        await again.send_str(json.dumps({"op": 6, "d": resume}))
        assert (await receive(again))["t"] == "RESUMED"
        await again.close()


async def test_a_connection_that_heartbeats_stays_open() -> None:
    # Beats 0.5 s apart against a 1 s interval: 1 s of slack before the 1.5 s grace runs
    # out, so a loaded machine's stall does not close it.
    async with FakeDiscord(heartbeat_interval_ms=1000) as fake, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(fake.gateway_url)
        assert (await receive(ws))["op"] == 10
        for _ in range(4):  # two seconds: past the grace of the first beat
            await asyncio.sleep(0.5)
            await ws.send_str(json.dumps({"op": 1, "d": None}))
            assert (await receive(ws))["op"] == 11
        assert not ws.closed
        assert fake.heartbeat_timeouts == []
        await ws.close()


async def test_discord_py_keeps_its_connection_by_heartbeating() -> None:
    # discord.py beats every interval: 0.5 s of slack a beat before the grace runs out.
    async with FakeDiscord(heartbeat_interval_ms=1000) as fake:
        guild = fake.add_guild()
        fake.add_channel(guild, "general")
        async with connected(fake) as client:
            await asyncio.sleep(3.2)  # three intervals, past two graces
            assert client.is_ready()
            assert not client.is_closed()
        assert fake.heartbeat_timeouts == []
        assert fake.resumes == []
