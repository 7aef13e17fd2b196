"""A user's forward in the fake Discord, as discord-api-docs resources/message.mdx documents it:
a message of no content of its own, a FORWARD reference (type 1) naming the source's channel,
message and guild, one snapshot of the source's documented fields (no author) that a later edit
does not reach, HAS_SNAPSHOT; refused where the forwarder cannot view the source or post in the
target, and for what Discord does not forward (a message gone, a system message, a poll, a
forward); the snapshot's content only with MESSAGE_CONTENT (gateway.mdx)."""

from __future__ import annotations

from unittest.mock import MagicMock

import aiohttp
import discord
import pytest

from tests.unit.testing.test_fake_discord_gateway import (
    GUILD_MESSAGES,
    GUILDS,
    identify,
    until,
)
from tzurot.testing.fake_discord import FakeDiscord, ForwardRefused
from tzurot.testing.fake_discord.forwards import HAS_SNAPSHOT, SNAPSHOT_FIELDS
from tzurot.testing.fake_discord.rules import Permission


async def test_a_forward_holds_a_snapshot_and_no_content_of_its_own() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general, memes = fake.add_channel(guild, "general"), fake.add_channel(guild, "memes")
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        picture = fake.upload(memes, "cat.png", b"png", "image/png")
        source = await fake.say(
            memes, bob, f"look <@{alice['id']}>", attachments=[picture], mention_roles=["7"]
        )
        forward = await fake.forward(source, general, alice)
        data = forward.data
        assert (data["content"], data["attachments"], data["embeds"]) == ("", [], [])
        assert (data["mentions"], data["mention_roles"]) == ([], [])  # a forward pings nobody
        assert data["type"] == 0
        assert data["flags"] & HAS_SNAPSHOT
        assert data["author"]["id"] == alice["id"]
        assert data["channel_id"] == general["id"]
        assert data["message_reference"] == {
            "type": 1,
            "message_id": str(source.id),
            "channel_id": memes["id"],
            "guild_id": guild["id"],
        }
        assert "referenced_message" not in data
        [snapshot] = data["message_snapshots"]
        copied = snapshot["message"]
        assert "author" not in copied
        assert set(copied) <= set(SNAPSHOT_FIELDS)
        assert copied["content"] == f"look <@{alice['id']}>"
        assert [a["filename"] for a in copied["attachments"]] == ["cat.png"]
        assert [u["id"] for u in copied["mentions"]] == [alice["id"]]
        assert copied["mention_roles"] == ["7"]
        assert copied["timestamp"] == source.data["timestamp"]
        # discord.py reads it as a snapshot.
        parsed = discord.MessageSnapshot(MagicMock(), copied)
        assert parsed.content == copied["content"]
        assert [a.filename for a in parsed.attachments] == ["cat.png"]
        assert fake.find(forward.id) is forward


async def test_a_snapshot_is_not_changed_by_a_later_edit_of_the_source() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        source = await fake.say(general, bob, "as it was")
        forward = await fake.forward(source, general, alice)
        await fake.edit_message(source, "as it is now")
        [snapshot] = forward.data["message_snapshots"]
        assert snapshot["message"]["content"] == "as it was"
        assert snapshot["message"]["edited_timestamp"] is None


async def test_a_message_the_forwarder_cannot_see_is_not_forwarded() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general, staff = fake.add_channel(guild, "general"), fake.add_channel(guild, "staff")
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        fake.hide_channel_from(staff, alice)
        hidden = await fake.say(staff, bob, "the payroll")
        with pytest.raises(PermissionError, match="50001"):
            await fake.forward(hidden, general, alice)
        secret_thread = fake.add_thread(guild, general, "plans", private=True)
        fake.join_thread(secret_thread, bob)
        secret = await fake.say(secret_thread, bob, "the party")
        with pytest.raises(PermissionError, match="50001"):
            await fake.forward(secret, general, alice)  # not a member of the private thread
        await fake.leave_guild(guild, alice)
        public = await fake.say(general, bob, "hello")
        with pytest.raises(PermissionError, match="50001"):
            await fake.forward(public, general, alice)
        assert all(not m.data.get("message_snapshots") for m in fake.messages[int(general["id"])])


async def test_a_forward_into_a_channel_the_forwarder_may_not_post_in_is_refused() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general, news = fake.add_channel(guild, "general"), fake.add_channel(guild, "news")
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        news["permission_overwrites"].append(
            {"id": alice["id"], "type": 1, "allow": "0", "deny": str(Permission.SEND_MESSAGES)}
        )
        said = await fake.say(general, bob, "read this")
        with pytest.raises(PermissionError, match="50013"):
            await fake.forward(said, news, alice)
        assert fake.messages.get(int(news["id"]), []) == []


@pytest.mark.parametrize(
    "extra",
    [{"type": 6}, {"type": 7}, {"poll": {"question": {"text": "?"}}}],
    ids=["pin-notice", "member-joined", "poll"],
)
async def test_what_is_no_basic_message_is_not_forwarded(extra: dict[str, object]) -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        notice = await fake.say(general, bob, "", extra=extra)
        with pytest.raises(ForwardRefused):
            await fake.forward(notice, general, alice)


async def test_a_deleted_message_and_a_forward_are_not_forwarded() -> None:
    async with FakeDiscord() as fake:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        said = await fake.say(general, bob, "soon gone")
        forward = await fake.forward(said, general, alice)
        with pytest.raises(ForwardRefused, match="forward"):
            await fake.forward(forward, general, bob)  # snapshots nest one deep
        await fake.delete_message(said)
        with pytest.raises(ForwardRefused, match="10008"):
            await fake.forward(said, general, alice)
        reply = await fake.say(general, bob, "a reply", reply_to=forward)
        assert await fake.forward(reply, general, alice)  # a reply is a basic message


async def test_without_message_content_a_snapshot_is_empty_too() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        general = fake.add_channel(guild, "general")
        alice, bob = fake.make_user("alice"), fake.make_user("bob")
        picture = fake.upload(general, "cat.png", b"png", "image/png")
        ws, _ = await identify(session, fake, [0, 1], intents=GUILDS | GUILD_MESSAGES)
        await until(ws, "GUILD_CREATE")
        source = await fake.say(general, bob, "secret words", attachments=[picture])
        await until(ws, "MESSAGE_CREATE")
        await fake.forward(source, general, alice)
        received = (await until(ws, "MESSAGE_CREATE"))["d"]
        [snapshot] = received["message_snapshots"]
        assert (snapshot["message"]["content"], snapshot["message"]["attachments"]) == ("", [])
        assert "guild_id" not in snapshot["message"]
        assert received["message_reference"]["message_id"] == str(source.id)
        await ws.close()
        fake.identify_window = 0.0  # a second session at once
        with_content, _ = await identify(session, fake, [0, 1])
        await until(with_content, "GUILD_CREATE")
        await fake.forward(source, general, alice)
        [shown] = (await until(with_content, "MESSAGE_CREATE"))["d"]["message_snapshots"]
        assert shown["message"]["content"] == "secret words"
        await with_content.close()
