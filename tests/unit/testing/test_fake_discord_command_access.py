"""The fake Discord offers a registered command only to whom and where Discord's client does
(command_access.py, from discord-api-docs Application Commands "Permissions", "Interaction
Contexts", "Age-Restricted Commands"); anything else is CommandUnavailable, the test's input
being what is wrong. And the interaction says where it came from (receiving-and-responding
"Interaction Structure": `context`, `member` or `user`, `app_permissions`,
`authorizing_integration_owners`). One test per rule, each with what still passes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tzurot.testing.fake_discord import (
    CommandUnavailable,
    FakeDiscord,
    FakeInteraction,
    InvalidSlashCommand,
    Json,
    Posted,
)

ADMINISTRATOR, MANAGE_CHANNELS, MANAGE_GUILD = 1 << 3, 1 << 4, 1 << 5
ATTACH_FILES, EMBED_LINKS, MENTION_EVERYONE = 1 << 15, 1 << 14, 1 << 17
USE_EXTERNAL_EMOJIS, USE_APPLICATION_COMMANDS = 1 << 18, 1 << 31
# Discord's default @everyone permissions, as the fake's servers have them; the bot's managed
# role: the README's permissions integer and Send Voice Messages.
EVERYONE_DEFAULT = 1071698660929
BOT_ROLE = 275414895680 | 1 << 46
ROLE, USER, CHANNEL = 1, 2, 3  # command permission types
MESSAGE_COMMAND = 3
DM, GROUP_DM = 1, 3  # channel types


def command(name: str, **fields: Any) -> Json:
    return {"type": 1, "name": name, "description": "d", **fields}


# As discord.py sends `@default_permissions(manage_channels=True) @guild_only()` (an int).
MANAGED = command("managed", default_member_permissions=MANAGE_CHANNELS)
ADMINS = command("admins", default_member_permissions="0")
OPEN = command("open")
ADULT = command("adult", nsfw=True)
OFF = command("off", default_permission=False)
GUILD_ONLY = command("guildonly", contexts=[0], dm_permission=False)
LEGACY_GUILD_ONLY = command("legacy", dm_permission=False)
DM_ONLY = command("dmonly", contexts=[1])
USER_APP = command("userapp", contexts=[0, 1, 2], integration_types=[0, 1])
USER_ONLY = command("useronly", contexts=[0, 1, 2], integration_types=[1])
ADULT_ANYWHERE = command("adultdm", nsfw=True, contexts=[0, 1, 2], integration_types=[0, 1])
INSPECT = {"type": MESSAGE_COMMAND, "name": "Inspect", "default_member_permissions": "0"}
QUOTE = {"type": MESSAGE_COMMAND, "name": "Quote", "contexts": [0, 1]}


@dataclass
class Scene:
    fake: FakeDiscord
    guild: Json
    channel: Json
    user: Json

    async def slash(self, name: str, **kwargs: Any) -> FakeInteraction:
        return await self.fake.slash(kwargs.pop("channel", self.channel), self.user, name, **kwargs)

    async def refused(self, name: str, **kwargs: Any) -> str:
        """What CommandUnavailable says of this invocation."""
        with pytest.raises(CommandUnavailable) as refused:
            await self.slash(name, **kwargs)
        return str(refused.value)

    def allow(self, name: str, *entries: Json, kind: int = 1) -> None:
        """The server's command permissions for `name` are `entries`."""
        self.fake.set_command_permissions(self.guild, name, list(entries), kind=kind)

    def entry(self, target: Json | str, kind: int, *, permission: bool = True) -> Json:
        """A command permission for a user or channel (`target`), or an id as is."""
        target_id = target if isinstance(target, str) else target["id"]
        return {"id": target_id, "type": kind, "permission": permission}


async def _put(session: aiohttp.ClientSession, fake: FakeDiscord, scope: str, body: Any) -> None:
    url = f"{fake.api_base}/applications/{fake.application_id}{scope}/commands"
    headers = {"Authorization": f"Bot {fake.token}"}
    async with session.put(url, json=body, headers=headers) as answer:
        assert answer.status == 200, await answer.text()


@asynccontextmanager
async def registered() -> AsyncIterator[Scene]:
    """Guild commands and global ones, as a bot's sync registers them."""
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        guild = fake.add_guild()
        guild_commands = [MANAGED, ADMINS, OPEN, ADULT, OFF, INSPECT]
        await _put(session, fake, f"/guilds/{guild['id']}", guild_commands)
        everywhere = [
            *(GUILD_ONLY, LEGACY_GUILD_ONLY, DM_ONLY, USER_APP, USER_ONLY, ADULT_ANYWHERE),
            QUOTE,
        ]
        await _put(session, fake, "", everywhere)
        yield Scene(fake, guild, fake.add_channel(guild, "general"), fake.make_user("alice"))


@asynccontextmanager
async def scene_with_overwrite(*, deny: int) -> AsyncIterator[tuple[Scene, Json]]:
    """A scene and a channel where a member overwrite denies the user `deny`."""
    async with registered() as scene:
        locked = scene.fake.add_channel(scene.guild, "locked")
        locked["permission_overwrites"].append(
            {"id": scene.user["id"], "type": 1, "allow": "0", "deny": str(deny)}
        )
        yield scene, locked


def member_permissions(record: FakeInteraction) -> int:
    return int(record.data["member"]["permissions"])


def registered_id(fake: FakeDiscord, scope: str, name: str) -> str:
    return str(next(c["id"] for c in fake.synced_commands[scope] if c["name"] == name))


def dm_message(fake: FakeDiscord, dm: Json, author: Json) -> Posted:
    """A message in a DM, to run a context menu command on (`say` posts only in a server)."""
    return fake._store(fake._message_json(dm, author, "hello"))


# ---- default_member_permissions ----


async def test_a_member_without_the_default_member_permissions_is_not_offered_it() -> None:
    async with registered() as scene:
        assert "needs default_member_permissions 16" in await scene.refused("managed")
        record = await scene.slash("managed", permissions=str(MANAGE_CHANNELS))
        assert member_permissions(record) & MANAGE_CHANNELS
        await scene.slash("managed", permissions=str(MANAGE_CHANNELS | MANAGE_GUILD))
        await scene.slash("managed", permissions=str(ADMINISTRATOR))  # admins pass everything
        await scene.slash("open")  # null: everyone


async def test_the_permissions_are_the_members_in_that_channel() -> None:
    async with scene_with_overwrite(deny=MANAGE_CHANNELS) as (scene, locked):
        # Manage Channels held, denied in `locked` by a member overwrite.
        await scene.slash("managed", permissions=str(MANAGE_CHANNELS))
        assert "needs default_member_permissions" in await scene.refused(
            "managed", channel=locked, permissions=str(MANAGE_CHANNELS)
        )


async def test_zero_is_for_administrators_only() -> None:
    async with registered() as scene:
        problem = await scene.refused("admins", permissions=str(MANAGE_CHANNELS | MANAGE_GUILD))
        assert 'default_member_permissions "0"' in problem
        await scene.slash("admins", permissions=str(ADMINISTRATOR))
        await scene.fake.slash(scene.channel, scene.fake.owner, "admins")  # the owner is one


async def test_default_permission_false_is_read_as_zero() -> None:
    """The deprecated `default_permission: false` ("whether the command is enabled by default
    when the app is added to a guild"), replaced by `"0"` in the docs."""
    async with registered() as scene:
        assert 'default_member_permissions "0"' in await scene.refused("off")
        await scene.slash("off", permissions=str(ADMINISTRATOR))
        scene.allow("off", scene.entry(scene.user, USER))
        await scene.slash("off")


async def test_a_channel_not_viewed_or_without_use_application_commands_offers_nothing() -> None:
    async with scene_with_overwrite(deny=USE_APPLICATION_COMMANDS) as (scene, locked):
        assert "lacks Use Application Commands" in await scene.refused("open", channel=locked)
        await scene.slash("open")
        scene.fake.hide_channel_from(scene.channel, scene.user)
        assert "lacks View Channel" in await scene.refused("open")


async def test_a_user_not_in_the_server_is_offered_none_of_its_commands() -> None:
    async with registered() as scene:
        bob = scene.fake.make_user("bob")
        await scene.fake.slash(scene.channel, bob, "open")
        await scene.fake.leave_guild(scene.guild, bob)
        with pytest.raises(CommandUnavailable, match="not a member"):
            await scene.fake.slash(scene.channel, bob, "open")
        await scene.slash("open")  # alice is still in it


# ---- context menu commands ----


async def test_a_context_menu_command_is_held_to_the_same_rules() -> None:
    async with registered() as scene:
        target = await scene.fake.say(scene.channel, scene.fake.owner, "hello")
        with pytest.raises(CommandUnavailable, match="context menu Inspect"):
            await scene.fake.context_menu(scene.channel, scene.user, "Inspect", target)
        record = await scene.fake.context_menu(scene.channel, scene.fake.owner, "Inspect", target)
        sent = record.data["data"]
        assert sent["id"] == registered_id(scene.fake, scene.guild["id"], "Inspect")
        assert sent["guild_id"] == scene.guild["id"]  # "the guild the command is registered to"


async def test_a_context_menu_command_must_be_registered_where_it_is_run() -> None:
    async with registered() as scene:
        fake = scene.fake
        target = await fake.say(scene.channel, fake.owner, "hello")
        with pytest.raises(InvalidSlashCommand, match="Nope is not a message command"):
            await fake.context_menu(scene.channel, fake.owner, "Nope", target)
        dm = fake.dm_channel(scene.user)
        mine = dm_message(fake, dm, scene.user)
        with pytest.raises(InvalidSlashCommand, match="a DM offers only global commands"):
            await fake.context_menu(dm, scene.user, "Inspect", mine)  # the guild's
        quoted = (await fake.context_menu(dm, scene.user, "Quote", mine)).data
        assert quoted["data"]["id"] == registered_id(fake, "global", "Quote")
        assert "guild_id" not in quoted["data"]
        assert quoted["context"] == 1


async def test_command_permissions_apply_to_message_commands() -> None:
    async with registered() as scene:
        fake, bob = scene.fake, scene.fake.make_user("bob")
        target = await fake.say(scene.channel, fake.owner, "hello")
        scene.allow("Quote", scene.entry(scene.user, USER, permission=False), kind=MESSAGE_COMMAND)
        with pytest.raises(CommandUnavailable, match="disabled for this member"):
            await fake.context_menu(scene.channel, scene.user, "Quote", target)
        await fake.context_menu(scene.channel, bob, "Quote", target)
        scene.allow("Inspect", scene.entry(bob, USER), kind=MESSAGE_COMMAND)
        await fake.context_menu(scene.channel, bob, "Inspect", target)
        with pytest.raises(InvalidSlashCommand, match="/Quote is not a slash command"):
            scene.allow("Quote", scene.entry(bob, USER))  # a slash command unless told


# ---- the server's command permissions (Integrations settings) ----


async def test_a_command_permission_for_the_user_overrides_the_default() -> None:
    async with registered() as scene:
        scene.allow("managed", scene.entry(scene.user, USER))
        record = await scene.slash("managed")
        assert not member_permissions(record) & MANAGE_CHANNELS  # allowed all the same
        other = scene.fake.make_user("bob")
        with pytest.raises(CommandUnavailable):  # only for the user named
            await scene.fake.slash(scene.channel, other, "managed")


async def test_a_command_permission_can_deny_a_channel_or_everyone() -> None:
    async with registered() as scene:
        fake, guild = scene.fake, scene.guild
        elsewhere = fake.add_channel(guild, "elsewhere")
        off_here = scene.entry(scene.channel, CHANNEL, permission=False)
        scene.allow("open", off_here)
        assert "disabled for this member or channel" in await scene.refused("open")
        await scene.slash("open", channel=elsewhere)
        all_channels = str(int(guild["id"]) - 1)
        back_here = {**off_here, "permission": True}
        off_everywhere = scene.entry(all_channels, CHANNEL, permission=False)
        scene.allow("open", off_everywhere, back_here)
        await scene.slash("open")  # the channel's own wins over all channels'
        await scene.refused("open", channel=elsewhere)
        nobody = scene.entry(guild["id"], ROLE, permission=False)
        scene.allow("managed", nobody)
        await scene.refused("managed", permissions=str(MANAGE_CHANNELS))
        scene.allow("managed", nobody, scene.entry(scene.user, USER))
        await scene.slash("managed")  # the user's own wins over @everyone's
        await scene.slash("managed", permissions=str(ADMINISTRATOR), channel=elsewhere)


async def test_a_channels_command_permission_applies_to_its_threads() -> None:
    async with registered() as scene:
        fake = scene.fake
        scene.allow("open", scene.entry(scene.channel, CHANNEL, permission=False))
        in_general = fake.add_thread(scene.guild, scene.channel, "t")
        assert "disabled for this member or channel" in await scene.refused(
            "open", channel=in_general
        )
        elsewhere = fake.add_channel(scene.guild, "elsewhere")
        await scene.slash("open", channel=fake.add_thread(scene.guild, elsewhere, "t"))


async def test_a_channel_allow_does_not_lift_default_member_permissions() -> None:
    async with registered() as scene:
        scene.allow("managed", scene.entry(scene.channel, CHANNEL))
        assert "needs default_member_permissions 16" in await scene.refused("managed")
        await scene.slash("managed", permissions=str(MANAGE_CHANNELS))


async def test_zero_gives_way_to_an_explicit_overwrite() -> None:
    async with registered() as scene:
        scene.allow("admins", scene.entry(scene.user, USER))
        await scene.slash("admins")
        with pytest.raises(CommandUnavailable, match='default_member_permissions "0"'):
            await scene.fake.slash(scene.channel, scene.fake.make_user("bob"), "admins")


async def test_an_administrator_passes_a_channel_or_all_channels_deny() -> None:
    async with registered() as scene:
        admin = str(ADMINISTRATOR)
        scene.allow("open", scene.entry(scene.channel, CHANNEL, permission=False))
        await scene.refused("open")
        await scene.slash("open", permissions=admin)
        all_channels = str(int(scene.guild["id"]) - 1)
        scene.allow("open", scene.entry(all_channels, CHANNEL, permission=False))
        await scene.refused("open")
        await scene.slash("open", permissions=admin)


async def test_a_users_deny_beats_an_everyone_allow() -> None:
    async with registered() as scene:
        everyone = scene.entry(scene.guild["id"], ROLE)
        scene.allow("open", everyone, scene.entry(scene.user, USER, permission=False))
        assert "disabled for this member" in await scene.refused("open")
        await scene.fake.slash(scene.channel, scene.fake.make_user("bob"), "open")


async def test_command_permissions_are_held_to_discords_form() -> None:
    """At most 100 (Guild Application Command Permissions Structure), a type role (1), user (2)
    or channel (3), a boolean permission; and a role the fake can honour: @everyone only."""
    async with registered() as scene:
        fake, guild = scene.fake, scene.guild
        users = [scene.entry(fake.make_user(f"u{n}"), USER) for n in range(101)]
        with pytest.raises(ValueError, match="at most 100"):
            scene.allow("open", *users)
        scene.allow("open", *users[:100])
        wrongs: list[tuple[Json, str]] = [
            ({"type": 9}, "type 9"),
            ({"type": "2"}, "type '2'"),
            ({"permission": "false"}, "permission 'false'"),
            ({"permission": 0}, "permission 0"),
        ]
        for wrong, words in wrongs:
            with pytest.raises(ValueError, match=words):
                scene.allow("open", {**scene.entry(scene.user, USER), **wrong})
        moderators = fake.add_role(guild, "moderators")
        with pytest.raises(ValueError, match="users hold no roles"):
            scene.allow("open", scene.entry(moderators, ROLE, permission=False))
        scene.allow("open", scene.entry(guild["id"], ROLE, permission=False))
        assert "disabled" in await scene.refused("open")


# ---- contexts ----


async def test_a_guild_only_command_is_not_offered_in_the_bots_dm() -> None:
    async with registered() as scene:
        dm = scene.fake.dm_channel(scene.user)
        assert "has contexts [0]" in await scene.refused("guildonly", channel=dm)
        assert "dm_permission false" in await scene.refused("legacy", channel=dm)
        await scene.slash("guildonly")
        await scene.slash("legacy")
        assert "has contexts [1]" in await scene.refused("dmonly")
        await scene.slash("dmonly", channel=dm)


async def test_a_guild_command_is_not_offered_in_a_dm() -> None:
    async with registered() as scene:
        dm = scene.fake.dm_channel(scene.user)
        with pytest.raises(InvalidSlashCommand, match="a DM offers only global commands"):
            await scene.slash("open", channel=dm)


async def test_a_private_channel_offers_only_commands_installed_to_users() -> None:
    async with registered() as scene:
        with_bob = scene.fake.dm_channel(scene.user, other=scene.fake.make_user("bob"))
        assert "not offered in a DM or group DM" in await scene.refused("dmonly", channel=with_bob)
        record = await scene.slash("userapp", channel=with_bob)
        assert record.data["context"] == 2
        assert int(record.data["app_permissions"]) == ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE


async def test_the_interaction_says_where_it_was_invoked() -> None:
    async with registered() as scene:
        in_guild = (await scene.slash("open")).data
        assert (in_guild["context"], in_guild["guild_id"]) == (0, scene.guild["id"])
        assert in_guild["member"]["user"]["id"] == scene.user["id"]
        assert "user" not in in_guild
        in_dm = (await scene.slash("dmonly", channel=scene.fake.dm_channel(scene.user))).data
        assert in_dm["context"] == 1
        assert in_dm["user"]["id"] == scene.user["id"]
        assert {"member", "guild_id", "guild_locale"}.isdisjoint(in_dm)
        dm_bits = ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS
        assert int(in_dm["app_permissions"]) == dm_bits


async def test_a_dm_lists_the_other_party_as_its_recipient() -> None:
    """resources/channel "Example DM Channel" and "Example Group DM Channel": the recipients
    are the others (the bot's DM with a user lists the user, not the bot)."""
    async with registered() as scene:
        fake, bob, carol = scene.fake, scene.fake.make_user("bob"), scene.fake.make_user("carol")
        in_dm = (await scene.slash("userapp", channel=fake.dm_channel(scene.user))).data
        assert [u["id"] for u in in_dm["channel"]["recipients"]] == [scene.user["id"]]
        assert (in_dm["channel"]["type"], in_dm["context"]) == (DM, 1)
        named = fake.dm_channel(scene.user, other=fake.bot_user)  # the bot's DM all the same
        assert (await scene.slash("dmonly", channel=named)).data["context"] == 1
        with_bob = (
            await scene.slash("userapp", channel=fake.dm_channel(scene.user, other=bob))
        ).data
        assert [u["id"] for u in with_bob["channel"]["recipients"]] == [bob["id"]]
        assert (with_bob["channel"]["type"], with_bob["context"]) == (DM, 2)
        group = fake.group_dm(scene.user, bob, carol)
        in_group = (await scene.slash("userapp", channel=group)).data
        assert [u["id"] for u in in_group["channel"]["recipients"]] == [bob["id"], carol["id"]]
        assert (in_group["channel"]["type"], in_group["context"]) == (GROUP_DM, 2)
        assert "not offered in a DM or group DM" in await scene.refused("dmonly", channel=group)


async def test_authorizing_integration_owners_follow_the_commands_install_types() -> None:
    """receiving-and-responding "Authorizing Integration Owners Object": a key only for an
    installation context the command supports (`integration_types`) and the interaction
    context allows: GUILD_INSTALL "0" (the guild's id, or "0" in the bot's DM), USER_INSTALL
    "1" (the user's id)."""
    async with registered() as scene:
        fake, me, guild_id = scene.fake, scene.user["id"], scene.guild["id"]
        dm = fake.dm_channel(scene.user)
        with_bob = fake.dm_channel(scene.user, other=fake.make_user("bob"))

        async def owners(name: str, channel: Json) -> Json:
            record = await scene.slash(name, channel=channel)
            return dict(record.data["authorizing_integration_owners"])

        assert await owners("open", scene.channel) == {"0": guild_id}
        assert await owners("dmonly", dm) == {"0": "0"}
        assert await owners("userapp", scene.channel) == {"0": guild_id, "1": me}
        assert await owners("userapp", dm) == {"0": "0", "1": me}
        assert await owners("userapp", with_bob) == {"1": me}
        assert await owners("useronly", dm) == {"1": me}
        assert await owners("useronly", scene.channel) == {"1": me}


async def test_a_modal_submit_carries_the_commands_integration_owners() -> None:
    async with registered() as scene, aiohttp.ClientSession() as session:
        fake = scene.fake
        opened = await scene.slash("useronly", channel=fake.dm_channel(scene.user))
        url = f"{fake.api_base}/interactions/{opened.id}/{opened.token}/callback"
        text_input = {"type": 4, "custom_id": "name", "style": 1, "label": "Name"}
        modal = {
            "custom_id": "m",
            "title": "T",
            "components": [{"type": 1, "components": [text_input]}],
        }
        async with session.post(url, json={"type": 9, "data": modal}) as answer:
            assert answer.status in {200, 204}, await answer.text()
        submitted = await fake.submit_modal(opened, scene.user, {"name": "n"})
        assert submitted.data["authorizing_integration_owners"] == {"1": scene.user["id"]}


# ---- age-restricted commands ----


async def test_an_nsfw_command_only_in_an_age_restricted_channel() -> None:
    async with registered() as scene:
        fake = scene.fake
        assert "age-restricted" in await scene.refused("adult")
        adults = fake.add_channel(scene.guild, "adults", nsfw=True)
        await scene.slash("adult", channel=adults)
        await scene.slash("adult", channel=fake.add_thread(scene.guild, adults, "t"))
        dm = fake.dm_channel(scene.user)
        assert "not enabled it in DMs" in await scene.refused("adultdm", channel=dm)
        fake.allow_age_restricted_dms(scene.user)
        await scene.slash("adultdm", channel=dm)
        bob = fake.make_user("bob")
        for private in (fake.dm_channel(scene.user, other=bob), fake.group_dm(scene.user, bob)):
            assert "age-restricted" in await scene.refused("adultdm", channel=private)
        await scene.slash("userapp", channel=fake.group_dm(scene.user, bob))  # not nsfw


# ---- app_permissions ----


async def test_app_permissions_are_the_bots_in_the_channel() -> None:
    async with registered() as scene:
        fake = scene.fake
        shown = int((await scene.slash("open")).data["app_permissions"])
        assert shown == EVERYONE_DEFAULT | BOT_ROLE
        quiet = fake.add_channel(scene.guild, "quiet")
        fake.deny_bot(quiet, ATTACH_FILES)
        in_quiet = int((await scene.slash("open", channel=quiet)).data["app_permissions"])
        assert in_quiet == shown & ~ATTACH_FILES
