"""The fake gateway refuses what Discord's refuses: a hasty IDENTIFY (op 9), the message-content
intent without approval (4014); and a RESUME replays what was missed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tzurot.testing.fake_discord import FakeDiscord, Json

INTENTS = (1 << 0) | (1 << 9) | (1 << 15)  # guilds, guild messages, message content


async def receive(ws: aiohttp.ClientWebSocketResponse) -> Json:
    msg = await asyncio.wait_for(ws.receive(), 5)
    if msg.type is not aiohttp.WSMsgType.TEXT:
        return {"closed": ws.close_code}
    frame: Json = json.loads(msg.data)
    return frame


async def until(ws: aiohttp.ClientWebSocketResponse, event: str) -> Json:
    while True:
        frame = await receive(ws)
        if frame.get("t") == event or "closed" in frame or frame.get("op") == 9:
            return frame


async def identify(
    session: aiohttp.ClientSession, fake: FakeDiscord, shard: list[int], intents: int = INTENTS
) -> tuple[aiohttp.ClientWebSocketResponse, Json]:
    ws = await session.ws_connect(fake.gateway_url)
    assert (await receive(ws))["op"] == 10
    data: dict[str, Any] = {"token": fake.token, "intents": intents, "shard": shard}
    data["properties"] = {"os": "linux", "browser": "t", "device": "t"}
    await ws.send_str(json.dumps({"op": 2, "d": data}))
    return ws, await until(ws, "READY")


async def test_a_second_identify_in_the_same_bucket_within_5_seconds_is_invalid() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        fake.max_concurrency = 1
        first, ready = await identify(session, fake, [0, 2])
        assert ready["t"] == "READY"
        second, answer = await identify(session, fake, [1, 2])
        assert answer == {"op": 9, "d": False, "s": None, "t": None}
        assert fake.invalid_sessions == [1]
        await first.close()
        await second.close()


async def test_shards_in_different_buckets_may_identify_together() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        fake.max_concurrency = 2
        first, a = await identify(session, fake, [0, 2])
        second, b = await identify(session, fake, [1, 2])
        assert (a["t"], b["t"]) == ("READY", "READY")
        await first.close()
        await second.close()


async def test_message_content_without_approval_closes_with_4014() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        fake.message_content_approved = False
        ws, answer = await identify(session, fake, [0, 1])
        assert answer == {"closed": 4014}
        await ws.close()


async def test_resume_replays_the_events_missed_while_disconnected() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        alice = fake.make_user("alice")
        ws, ready = await identify(session, fake, [0, 1])
        created = await until(ws, "GUILD_CREATE")
        seq = created["s"]
        await ws.close()
        await fake.wait_until(lambda: not fake.sessions)
        await fake.say(channel, alice, "while you were away")
        again = await session.ws_connect(fake.gateway_url)
        assert (await receive(again))["op"] == 10
        resume = {"token": fake.token, "session_id": ready["d"]["session_id"], "seq": seq}
        await again.send_str(json.dumps({"op": 6, "d": resume}))
        missed = await receive(again)
        assert (missed["t"], missed["s"]) == ("MESSAGE_CREATE", seq + 1)
        assert missed["d"]["content"] == "while you were away"
        assert (await receive(again))["t"] == "RESUMED"
        await again.close()


async def test_resume_of_an_unknown_session_is_invalid() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        ws = await session.ws_connect(fake.gateway_url)
        await receive(ws)
        await ws.send_str(
            json.dumps({"op": 6, "d": {"token": fake.token, "session_id": "nope", "seq": 1}})
        )
        assert (await receive(ws))["op"] == 9
        await ws.close()


async def test_guild_create_has_only_the_threads_the_bot_can_view() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        public = fake.add_thread(guild, channel, "open")
        joined = fake.add_thread(guild, channel, "with the bot", private=True)
        fake.add_thread(guild, channel, "without the bot", private=True)
        fake.join_thread(joined, fake.bot_user)
        ws, _ = await identify(session, fake, [0, 1])
        created = await until(ws, "GUILD_CREATE")
        threads = {t["id"]: t for t in created["d"]["threads"]}
        assert threads.keys() == {public["id"], joined["id"]}
        assert "member" not in threads[public["id"]]
        assert threads[joined["id"]]["member"].keys() == {"join_timestamp", "flags"}
        await ws.close()
