"""The fake Discord's reads refuse what Discord's refuse: a message asked for in a channel it is not
in (10008) or in a voice channel without Connect (50013), a member of a guild they are not in
(10007) or of an unknown guild (10004)."""

from __future__ import annotations

import pytest

from tests.unit.testing.test_fake_discord_rules import discord_http
from tzurot.testing.fake_discord.rules import VOICE, Permission


async def test_get_channel_message_finds_only_a_message_of_that_channel() -> None:
    async with discord_http() as (http, guild, channel):
        fake = http.fake
        other = fake.add_channel(guild, "other")
        thread = fake.add_thread(guild, channel, "story")
        alice = fake.make_user("alice")
        elsewhere = await fake.say(other, alice, "hello from #other")
        in_thread = await fake.say(thread, alice, "in the thread")
        for where, said in ((channel, elsewhere), (channel, in_thread), (other, in_thread)):
            status, body, _ = await http.call("GET", f"/channels/{where['id']}/messages/{said.id}")
            assert (status, body["code"]) == (404, 10008)
        for where, said in ((other, elsewhere), (thread, in_thread)):
            status, body, _ = await http.call("GET", f"/channels/{where['id']}/messages/{said.id}")
            assert (status, body["id"]) == (200, str(said.id))


async def test_get_guild_member_answers_only_for_members_of_a_known_guild() -> None:
    async with discord_http() as (http, guild, channel):
        fake = http.fake
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        status, body, _ = await http.call("GET", f"/guilds/{guild['id']}/members/{alice['id']}")
        assert (status, body["user"]["id"]) == (200, alice["id"])
        await fake.leave_guild(guild, alice)
        status, body, _ = await http.call("GET", f"/guilds/{guild['id']}/members/{alice['id']}")
        assert (status, body["code"]) == (404, 10007)
        with pytest.raises(PermissionError, match="50001"):
            await fake.say(channel, alice, "I left")
        status, body, _ = await http.call(
            "GET", f"/guilds/{guild['id']}/members/{fake.snowflake()}"
        )
        assert (status, body["code"]) == (404, 10007)  # no such user
        status, body, _ = await http.call("GET", f"/guilds/{fake.snowflake()}/members/{bob['id']}")
        assert (status, body["code"]) == (404, 10004)
        status, _, _ = await http.call("GET", f"/guilds/{guild['id']}/members/{bob['id']}")
        assert status == 200  # bob never left


async def test_reading_a_message_in_a_voice_channel_needs_connect_too() -> None:
    async with discord_http() as (http, guild, _):
        fake = http.fake
        voice = fake.add_channel(guild, "lounge", kind=VOICE)
        said = await fake.say(voice, fake.make_user("alice"), "in the voice chat")
        path = f"/channels/{voice['id']}/messages/{said.id}"
        assert (await http.call("GET", path))[0] == 200
        fake.deny_bot(voice, Permission.CONNECT)
        status, body, _ = await http.call("GET", path)
        assert (status, body["code"]) == (403, 50013)
