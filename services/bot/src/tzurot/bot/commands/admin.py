"""/admin deny add|remove|list: superusers manage the denylist from Discord (the gateway
checks that the actor is a superuser; to anyone else it answers PERMISSION_DENIED).

A guild or channel scope is named by its Discord id (`scope_id`, 20 digits at most: the
gateway refuses anything else), a personality scope by the personality (`personality`). A
channel scope run in a thread with no `scope_id` is that thread alone (the gateway matches a
channel entry by a thread's id as well as its channel's), and the reply says so. In a DM with
the bot, one with no `scope_id` has no server or channel to take: it is answered with why not,
and nothing is sent."""

from __future__ import annotations

from collections.abc import Mapping

import discord
from discord import app_commands

from tzurot.bot.commands.common import (
    NO_CHANNEL_IN_DM,
    actor,
    defer,
    failure_text,
    in_dm,
    reply,
    send,
)
from tzurot.bot.commands.lookups import personality_choices
from tzurot.bot.commands.notifications import announce_command
from tzurot.bot.commands.options import DenyReason, DiscordId, PersonalityName, Reference
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import InvalidArgument, TzurotError
from tzurot.v1 import gateway_pb2 as gw

TARGETS = {"user": gw.DENY_TARGET_USER, "guild": gw.DENY_TARGET_GUILD}
SCOPES = {
    "bot": gw.DENY_SCOPE_BOT,
    "guild": gw.DENY_SCOPE_GUILD,
    "channel": gw.DENY_SCOPE_CHANNEL,
    "personality": gw.DENY_SCOPE_PERSONALITY,
}
MODES = {"block": gw.DENY_MODE_BLOCK, "mute": gw.DENY_MODE_MUTE}
OPTIONS_OF_FIELDS = {"entry.target_id": "guild_id", "entry.scope_id": "scope_id"}
"""The `/admin deny add` option a refused request field came from (a user target is Discord's
own, never refused; a personality scope's field is the `personality` option's)."""
NO_SERVER_IN_DM = (
    "A DM has no server to take: give the server's id in `scope_id`, or run this in the "
    "server you mean."
)
"""The answer to `scope: guild` with no `scope_id` asked in a DM (`scope: channel`'s is
`NO_CHANNEL_IN_DM`): there is no server to deny in, and nothing is sent."""


def _name(table: Mapping[str, int], value: int) -> str:
    return next((k for k, v in table.items() if v == value), "?")


def entry_line(e: gw.DenylistEntry) -> str:
    where = _name(SCOPES, e.scope) + (f" `{e.scope_id}`" if e.scope_id else "")
    reason = f" — {e.reason}" if e.reason else ""
    return (
        f"`{e.id}` {_name(MODES, e.mode)} {_name(TARGETS, e.target)} `{e.target_id}` "
        f"in {where}{reason}"
    )


def entries_text(entries: list[gw.DenylistEntry]) -> str:
    if not entries:
        return "The denylist is empty."
    return "\n".join(["**Denylist**", *(entry_line(e) for e in entries[:40])])


def scope_misfit(scope: str, scope_id: str, personality: str) -> str | None:
    """Why the options given do not fit `scope` (nothing is added then), or None."""
    if scope == "personality":
        if scope_id:
            return (
                "with `scope: personality`, name the personality in `personality`; "
                "`scope_id` is a server's or a channel's id."
            )
        if not personality.strip():
            return "name the personality (the `personality` option)."
    elif personality:
        return f"`personality` goes with `scope: personality`, not `scope: {scope}`."
    elif scope == "bot" and scope_id:
        return "`scope_id` goes with `scope: guild` or `channel`; `scope: bot` is everywhere."
    return None


def _scope_id(interaction: discord.Interaction, scope: str, given: str, personality: str) -> str:
    """The scope's id: the personality, or the id given, else this guild or channel."""
    if scope == "personality":
        return personality
    if given or scope == "bot":
        return given
    if scope == "guild":
        return str(interaction.guild_id or "")
    return str(interaction.channel_id or "")


def thread_note(channel: object) -> str:
    """What a channel scope taken from `channel` (no `scope_id` given) covers, when `channel`
    is a thread or a forum post: that thread alone, not its channel."""
    if not isinstance(channel, discord.Thread):
        return ""
    return (
        "\nThat is this thread alone; to deny in all of its channel, give "
        f"`scope_id: {channel.parent_id}`."
    )


def refusal_text(err: TzurotError, scope: str) -> str:
    """The gateway's refusal of an entry, naming the option the refused value was typed in
    (the gateway names the request's field, which no Discord user sees)."""
    if not isinstance(err, InvalidArgument):
        return failure_text(err)
    option = OPTIONS_OF_FIELDS.get(err.field)
    if option == "scope_id" and scope == "personality":
        option = "personality"
    named = f" (`{option}`)" if option else ""
    return f"Nothing added{named}: {failure_text(err)}"


class DenyCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="deny", description="Block or mute users and servers")
        self.gateway = gateway

    @app_commands.command(name="add", description="Block or mute a user (or a server)")
    @app_commands.choices(
        mode=[app_commands.Choice(name=k, value=k) for k in MODES],
        scope=[app_commands.Choice(name=k, value=k) for k in SCOPES],
    )
    @app_commands.describe(
        user="The user to deny (or give guild_id instead)",
        guild_id="A server's id, to deny the whole server (when no user is given)",
        mode="block (the default): refused, and may be told so; mute: ignored in silence",
        scope="Where: bot (everywhere, the default), guild, channel or personality",
        scope_id="With scope guild or channel: its id (default: this server, channel or thread)",
        reason="Why, shown in /admin deny list (optional)",
        personality="With scope personality: which one",
    )
    async def add(  # noqa: PLR0917  # a slash command's options are its parameters
        self,
        interaction: discord.Interaction,
        user: discord.User | None = None,
        guild_id: DiscordId = "",
        mode: str = "block",
        scope: str = "bot",
        scope_id: DiscordId = "",
        reason: DenyReason = "",
        personality: PersonalityName = "",
    ) -> None:
        misfit = scope_misfit(scope, scope_id, personality)
        if misfit is not None:
            await send(interaction, f"Nothing added: {misfit}")
            return
        if scope in {"guild", "channel"} and not scope_id and in_dm(interaction):
            await send(interaction, NO_SERVER_IN_DM if scope == "guild" else NO_CHANNEL_IN_DM)
            return
        target, target_id = ("user", str(user.id)) if user is not None else ("guild", guild_id)
        entry = gw.DenylistEntry(
            target=TARGETS[target],
            target_id=target_id,
            scope=SCOPES[scope],
            scope_id=_scope_id(interaction, scope, scope_id, personality),
            mode=MODES[mode],
            reason=reason,
        )
        note = thread_note(interaction.channel) if scope == "channel" and not scope_id else ""
        await defer(interaction)
        try:
            added = await self.gateway.call(
                self.gateway.stub.AddDenylistEntry(
                    gw.AddDenylistEntryRequest(actor=actor(interaction), entry=entry)
                )
            )
            text = f"Added: {entry_line(added.entry)}{note}"
        except TzurotError as err:
            text = refusal_text(err, scope)
        await send(interaction, text)

    @add.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)

    @app_commands.command(name="remove", description="Remove a denylist entry by its id")
    @app_commands.describe(entry_id="The entry's id, from /admin deny list")
    async def remove(self, interaction: discord.Interaction, entry_id: Reference) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.RemoveDenylistEntry(
                gw.RemoveDenylistEntryRequest(actor=actor(interaction), entry_id=entry_id)
            ),
            lambda _: f"Removed entry `{entry_id}`.",
        )

    @app_commands.command(name="list", description="Every denylist entry")
    async def list_entries(self, interaction: discord.Interaction) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ListDenylist(
                gw.ListDenylistRequest(actor=actor(interaction))
            ),
            lambda r: entries_text(list(r.entries)),
        )


class AdminCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="admin", description="Superusers: run the bot")
        self.add_command(DenyCommands(gateway))
        self.add_command(announce_command(gateway))
