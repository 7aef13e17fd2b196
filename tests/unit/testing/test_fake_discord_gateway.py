"""The fake gateway refuses what Discord's refuses: a hasty IDENTIFY (op 9), the message-content
intent without approval (4014); a RESUME replays what was missed; a session gets only the events
of the intents it identified with, and message content only with MESSAGE_CONTENT (or where the
bot is mentioned or the author)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tzurot.testing.fake_discord import FakeDiscord, Json

GUILDS, GUILD_MESSAGES, GUILD_MESSAGE_REACTIONS, MESSAGE_CONTENT = 1, 1 << 9, 1 << 10, 1 << 15
INTENTS = GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT


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


async def events_until(ws: aiohttp.ClientWebSocketResponse, event: str) -> list[Json]:
    """Every dispatch up to and including the first `event`."""
    seen: list[Json] = []
    while not seen or seen[-1].get("t") != event:
        frame = await receive(ws)
        assert "closed" not in frame, frame
        seen.append(frame)
    return seen


async def test_no_events_of_an_intent_the_session_did_not_ask_for() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        thread = fake.add_thread(guild, channel, "story")
        alice = fake.make_user("alice")
        ws, _ = await identify(session, fake, [0, 1], intents=GUILDS)
        await until(ws, "GUILD_CREATE")
        said = await fake.say(channel, alice, "hello")
        await fake.edit_message(said, "hello again")
        await fake.react(said, alice, "👍")
        await fake.delete_message(said)
        await fake.set_thread(thread, locked=True)  # GUILDS: this one arrives
        seen = [f.get("t") for f in await events_until(ws, "THREAD_UPDATE")]
        assert seen == ["THREAD_UPDATE"]
        await ws.close()


async def test_without_the_guilds_intent_no_guild_create_but_messages_arrive() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        alice = fake.make_user("alice")
        ws, _ = await identify(session, fake, [0, 1], intents=GUILD_MESSAGES | MESSAGE_CONTENT)
        said = await fake.say(channel, alice, "hello")
        await fake.react(said, alice, "👍")  # no GUILD_MESSAGE_REACTIONS: not sent
        await fake.say(channel, alice, "bye")
        seen = [(f["t"], f["d"].get("content")) for f in await events_until(ws, "MESSAGE_CREATE")]
        assert seen == [("MESSAGE_CREATE", "hello")]
        assert (await receive(ws))["d"]["content"] == "bye"
        await ws.close()


async def test_without_message_content_a_message_is_empty_unless_it_mentions_the_bot() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        alice = fake.make_user("alice")
        picture = fake.upload(channel, "a.png", b"png", "image/png")
        ws, _ = await identify(session, fake, [0, 1], intents=GUILDS | GUILD_MESSAGES)
        await until(ws, "GUILD_CREATE")
        await fake.say(
            channel,
            alice,
            "secret words",
            attachments=[picture],
            extra={"embeds": [{"title": "t"}]},
        )
        plain = (await until(ws, "MESSAGE_CREATE"))["d"]
        assert (plain["content"], plain["attachments"], plain["embeds"]) == ("", [], [])
        assert plain["components"] == []
        assert plain["author"]["id"] == alice["id"]  # only the content is hidden
        mention = f"<@{fake.bot_user['id']}> are you there?"
        await fake.say(channel, alice, mention)
        assert (await until(ws, "MESSAGE_CREATE"))["d"]["content"] == mention
        mine = await fake.say(channel, fake.bot_user, "the bot's own words")
        assert (await until(ws, "MESSAGE_CREATE"))["d"]["content"] == "the bot's own words"
        await fake.say(channel, alice, "a reply", reply_to=mine)
        reply = (await until(ws, "MESSAGE_CREATE"))["d"]
        assert reply["content"] == ""
        assert reply["referenced_message"]["content"] == "the bot's own words"
        await fake.edit_message(mine, "edited")
        assert (await until(ws, "MESSAGE_UPDATE"))["d"]["content"] == "edited"
        await ws.close()


async def test_a_resumed_session_keeps_its_intents() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        alice = fake.make_user("alice")
        ws, ready = await identify(session, fake, [0, 1], intents=GUILDS | GUILD_MESSAGES)
        seq = (await until(ws, "GUILD_CREATE"))["s"]
        await ws.close()
        await fake.wait_until(lambda: not fake.sessions)
        again = await session.ws_connect(fake.gateway_url)
        assert (await receive(again))["op"] == 10
        resume = {"token": fake.token, "session_id": ready["d"]["session_id"], "seq": seq}
        await again.send_str(json.dumps({"op": 6, "d": resume}))
        assert (await receive(again))["t"] == "RESUMED"
        said = await fake.say(channel, alice, "after the resume")
        await fake.react(said, alice, "👍")
        await fake.say(channel, alice, "and again")
        seen = [(f["t"], f["d"]["content"]) for f in await events_until(again, "MESSAGE_CREATE")]
        assert seen == [("MESSAGE_CREATE", "")]
        assert (await receive(again))["t"] == "MESSAGE_CREATE"  # the reaction was not sent
        await again.close()
