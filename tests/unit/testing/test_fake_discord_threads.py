"""The fake Discord's locked and archived threads, as discord-api-docs topics/threads.mdx states
them: no post or edit in a locked thread without Manage Threads (160005; 50083 when it is
archived too), no edit in an archived thread (50083), and a post in an archived thread that is
not locked unarchives it. What they still allow passes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tzurot.testing.fake_discord import FakeDiscord, Json
from tzurot.testing.fake_discord.rules import Permission

INTENTS = (1 << 0) | (1 << 9) | (1 << 15)  # guilds, guild messages, message content


@dataclass
class Http:
    fake: FakeDiscord
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, body: Any = None, *, bot: bool = True, **params: str
    ) -> tuple[int, Any]:
        headers = {"Authorization": "Bot " + self.fake.token} if bot else {}
        async with self.session.request(
            method, self.fake.api_base + path, json=body, headers=headers, params=params
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None


@asynccontextmanager
async def threads() -> AsyncIterator[tuple[Http, Json, Json]]:
    """The fake, a channel with a thread, and the channel's webhook."""
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        thread = fake.add_thread(guild, channel, "t")
        http = Http(fake, session)
        status, hook = await http.call("POST", f"/channels/{channel['id']}/webhooks", {"name": "T"})
        assert status == 200, hook
        yield http, thread, hook


def archived(thread: Json) -> bool:
    return bool(thread["thread_metadata"]["archived"])


async def bot_post(http: Http, thread: Json) -> tuple[int, Any]:
    return await http.call("POST", f"/channels/{thread['id']}/messages", {"content": "x"})


async def hook_post(http: Http, hook: Json, thread: Json) -> tuple[int, Any]:
    return await http.call(
        "POST",
        f"/webhooks/{hook['id']}/{hook['token']}",
        {"content": "x"},
        bot=False,
        wait="true",
        thread_id=thread["id"],
    )


async def hook_edit(http: Http, hook: Json, thread: Json, message_id: str) -> tuple[int, Any]:
    return await http.call(
        "PATCH",
        f"/webhooks/{hook['id']}/{hook['token']}/messages/{message_id}",
        {"content": "y"},
        bot=False,
        thread_id=thread["id"],
    )


async def test_the_bot_posts_in_a_locked_thread_only_with_manage_threads() -> None:
    async with threads() as (http, thread, _):
        fake = http.fake
        assert (await bot_post(http, thread))[0] == 200  # an open thread takes it
        await fake.set_thread(thread, locked=True)
        status, body = await bot_post(http, thread)
        assert (status, body["code"]) == (403, 160005)
        await fake.set_thread(thread, archived=True)  # closed and locked
        status, body = await bot_post(http, thread)
        assert (status, body["code"]) == (403, 50083)
        assert archived(thread)  # still closed
        # A moderator (Manage Threads) may: the post lands and reopens the thread.
        parent = fake.channels[int(thread["parent_id"])]
        parent["permission_overwrites"].append(
            {
                "id": fake.bot_user["id"],
                "type": 1,
                "allow": str(Permission.MANAGE_THREADS),
                "deny": "0",
            }
        )
        assert (await bot_post(http, thread))[0] == 200
        assert not archived(thread)
        assert fake.refusals == [
            ("create_message", 403, 160005),
            ("create_message", 403, 50083),
        ]


async def test_a_post_in_an_archived_thread_unarchives_it() -> None:
    async with threads() as (http, thread, hook):
        fake = http.fake
        await fake.set_thread(thread, archived=True)
        assert (await bot_post(http, thread))[0] == 200
        assert not archived(thread)
        await fake.set_thread(thread, archived=True)
        assert (await hook_post(http, hook, thread))[0] == 200
        assert not archived(thread)
        await fake.set_thread(thread, archived=True)
        await fake.say(thread, fake.make_user("alice"), "anyone here?")
        assert not archived(thread)
        assert fake.refusals == []


async def test_no_message_is_edited_in_an_archived_thread_but_one_may_be_deleted() -> None:
    async with threads() as (http, thread, hook):
        fake = http.fake
        _, first = await hook_post(http, hook, thread)
        _, second = await hook_post(http, hook, thread)
        await fake.set_thread(thread, archived=True)
        status, body = await hook_edit(http, hook, thread, first["id"])
        assert (status, body["code"]) == (403, 50083)
        assert fake.find(int(first["id"])).edits == []  # type: ignore[union-attr]
        assert archived(thread)  # a refused edit reopens nothing
        path = f"/webhooks/{hook['id']}/{hook['token']}/messages/{second['id']}"
        status, _ = await http.call("DELETE", path, bot=False, thread_id=thread["id"])
        assert status == 204  # "the only operation that should happen" there
        await fake.set_thread(thread, archived=False)
        assert (await hook_edit(http, hook, thread, first["id"]))[0] == 200
        assert fake.refusals == [("edit_webhook_message", 403, 50083)]


async def test_a_webhook_cannot_post_in_a_closed_and_locked_thread() -> None:
    """Discord does not unarchive a locked thread for a message (only Manage Threads does,
    and a webhook has no permissions): 50083. In a locked thread that is active, what Discord
    does with a webhook is not documented, so the fake lets it post and edit there."""
    async with threads() as (http, thread, hook):
        fake = http.fake
        await fake.set_thread(thread, locked=True)
        status, sent = await hook_post(http, hook, thread)
        assert status == 200
        assert (await hook_edit(http, hook, thread, sent["id"]))[0] == 200
        await fake.set_thread(thread, archived=True)
        status, body = await hook_post(http, hook, thread)
        assert (status, body["code"]) == (403, 50083)
        assert archived(thread)
        with pytest.raises(PermissionError, match="50083"):
            await fake.say(thread, fake.make_user("proxy", bot=True), "x", webhook_id=1)
        assert fake.refusals == [("execute_webhook", 403, 50083)]


async def test_users_post_in_a_locked_thread_only_with_manage_threads() -> None:
    async with threads() as (http, thread, _):
        fake = http.fake
        alice = fake.make_user("alice")
        await fake.set_thread(thread, locked=True)
        with pytest.raises(PermissionError, match="160005"):
            await fake.say(thread, alice, "let me speak")
        await fake.say(thread, fake.owner, "as a moderator")  # the owner has every permission
        await fake.set_thread(thread, archived=True)
        with pytest.raises(PermissionError, match="50083"):
            await fake.say(thread, alice, "let me speak")
        assert archived(thread)
        await fake.say(thread, fake.owner, "reopening")
        assert not archived(thread)
        assert thread["thread_metadata"]["locked"]  # reopened, still locked


async def receive_until(ws: aiohttp.ClientWebSocketResponse, event: str) -> Json:
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        frame: Json = json.loads(msg.data)
        if frame.get("t") == event:
            return frame


async def test_the_bot_hears_of_a_thread_closed_or_locked_and_gets_no_archived_one_up_front() -> (
    None
):
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "general")
        active = fake.add_thread(guild, channel, "active")
        closed = fake.add_thread(guild, channel, "closed")
        await fake.set_thread(closed, archived=True)  # no session yet: nothing sent
        ws = await session.ws_connect(fake.gateway_url)
        await ws.receive()  # HELLO
        data = {"token": fake.token, "intents": INTENTS, "shard": [0, 1], "properties": {}}
        await ws.send_str(json.dumps({"op": 2, "d": data}))
        created = await receive_until(ws, "GUILD_CREATE")
        assert [t["id"] for t in created["d"]["threads"]] == [active["id"]]
        await fake.set_thread(active, archived=True, locked=True)
        update = await receive_until(ws, "THREAD_UPDATE")
        assert update["d"]["id"] == active["id"]
        assert update["d"]["thread_metadata"]["archived"] is True
        assert update["d"]["thread_metadata"]["locked"] is True
        await ws.close()
