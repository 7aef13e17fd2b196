"""/lorebook import|export|list|attach|detach|delete: World Info through the gateway.

Attaching to a channel (or detaching from one) needs Manage Channels there, like channel
activation; to a personality, its owner; globally, a superuser. The gateway checks each; the
bot passes the Manage Channels it saw on the interaction (`manage_channels`).
"""

from __future__ import annotations

import io

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.common import (
    NO_CHANNEL_IN_DM,
    actor,
    defer,
    failure_text,
    fits,
    in_dm,
    reply,
    send,
    with_warnings,
)
from tzurot.bot.commands.lookups import (
    lorebook_choices,
    owned_personality_choices,
    personality_choices,
)
from tzurot.bot.commands.options import (
    LONGEST_LOREBOOK_NAME,
    LorebookName,
    PersonalityName,
    Reference,
)
from tzurot.bot.commands.words import plural
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.runtime.graphemes import trimmed_prefix
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

MAX_LOREBOOK_FILE_BYTES = 12 * 1024 * 1024
"""The gateway's limit for a lorebook file (its `MAX_LOREBOOK_DOCUMENT_BYTES`): larger than a
book (4 MB of text) so that a book's own export, indented, imports again."""
SCOPES = {
    "personality": common.LORE_SCOPE_PERSONALITY,
    "channel": common.LORE_SCOPE_CHANNEL,
    "global": common.LORE_SCOPE_GLOBAL,
}
_SCOPE_CHOICES = [app_commands.Choice(name=name, value=name) for name in SCOPES]
LOREBOOK_HELP = "The lorebook, by name or id"
SCOPE_HELP = "personality (its owner), channel (this one; Manage Channels) or global (superusers)"
PERSONALITY_HELP = "With scope personality: which one"
_FORMATS = {
    "lorebook_v3": gw.LOREBOOK_FORMAT_UNSPECIFIED,
    "world_info": gw.LOREBOOK_FORMAT_WORLD_INFO,
}


def imported_text(r: gw.ImportLorebookResponse, *, attached: bool, replaced: bool) -> str:
    """What a lorebook import did, and what it changed of the file (uids renumbered, regex
    keys dropped), within one Discord message (`with_warnings`)."""
    verb = "Replaced" if replaced else "Imported"
    text = f"{verb} **{r.lorebook.name}** ({plural(r.lorebook.entry_count, 'entry', 'entries')})."
    if not (attached or replaced):
        text += " Attach it with `/lorebook attach`."
    return with_warnings(text, r.warnings)


def default_name(filename: str) -> str:
    """A book's name when neither the file nor the user gives one: the file's name without its
    extension, cut to what a name may have (the user gave no name to be refused) between two
    characters as a reader sees them, never inside one, and without spaces at its ends (the
    gateway drops them; `trimmed_prefix`, so no mark is left bare)."""
    stem = filename.rsplit(".", 1)[0].strip()
    return trimmed_prefix(stem, LONGEST_LOREBOOK_NAME)


def attached_text(book: common.Lorebook, scope: str, *, already: bool) -> str:
    """What `/lorebook attach` did (`already`: it was in play there before)."""
    if already:
        return f"**{book.name}** was already in play there ({scope}); nothing changed."
    return f"**{book.name}** is now in play ({scope})."


def _channel_id(interaction: discord.Interaction) -> str:
    channel = interaction.channel
    parent = getattr(channel, "parent_id", None)  # a thread's lore is its channel's
    return str(parent or interaction.channel_id or "")


def _target(
    interaction: discord.Interaction, scope: str, personality: str
) -> common.LorebookAttachment:
    if scope == "channel":
        return common.LorebookAttachment(scope=SCOPES[scope], target=_channel_id(interaction))
    if scope == "personality":
        return common.LorebookAttachment(scope=SCOPES[scope], target=personality)
    return common.LorebookAttachment(scope=SCOPES[scope])


def _may_manage_channel(interaction: discord.Interaction) -> bool:
    """The member's permissions in this channel, as Discord resolved them for the command."""
    return interaction.permissions.manage_channels


class LorebookCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(
            name="lorebook", description="Lorebooks (World Info): keyword-triggered lore"
        )
        self.gateway = gateway

    async def _checked(
        self, interaction: discord.Interaction, scope: str, personality: str
    ) -> bool:
        if scope == "channel" and in_dm(interaction):
            await send(interaction, NO_CHANNEL_IN_DM)
            return False
        if scope == "channel" and not _may_manage_channel(interaction):
            await send(interaction, "You need Manage Channels here to change this channel's lore.")
            return False
        if scope == "personality" and not personality.strip():
            await send(interaction, "Name the personality (the `personality` option).")
            return False
        return True

    @app_commands.command(
        name="import", description="Import a lorebook (SillyTavern world info JSON)"
    )
    @app_commands.choices(attach_to=_SCOPE_CHOICES)
    @app_commands.describe(
        file="The lorebook file: SillyTavern world info JSON, 12 MB at most",
        name="Used when the file names none (default: the file's name, its first 100 characters)",
        attach_to="Put it in play at once: for a personality, this channel, or global",
        personality="With attach_to personality: which one",
        replace="One of your lorebooks to update in place (its attachments stay)",
    )
    async def import_book(  # noqa: PLR0917  # discord.py: one parameter per command option
        self,
        interaction: discord.Interaction,
        file: discord.Attachment,
        name: LorebookName = "",
        attach_to: str = "",
        personality: PersonalityName = "",
        replace: Reference = "",
    ) -> None:
        if file.size > MAX_LOREBOOK_FILE_BYTES:
            await send(interaction, "That file is too large for a lorebook (12 MB at most).")
            return
        if attach_to and not await self._checked(interaction, attach_to, personality):
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        document = await file.read()
        request = gw.ImportLorebookRequest(
            actor=actor(interaction),
            document=document,
            name=name or default_name(file.filename),
            replace=replace,
            manage_channels=_may_manage_channel(interaction),
        )
        if attach_to:
            request.attach.CopyFrom(_target(interaction, attach_to, personality))
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ImportLorebook(request),
            lambda r: imported_text(r, attached=bool(attach_to), replaced=bool(replace)),
        )

    @app_commands.command(name="export", description="Download a lorebook")
    @app_commands.choices(format=[app_commands.Choice(name=n, value=n) for n in _FORMATS])
    @app_commands.describe(
        lorebook=LOREBOOK_HELP,
        format="world_info (SillyTavern, the default) or lorebook_v3",
    )
    async def export(
        self, interaction: discord.Interaction, lorebook: Reference, format: str = "world_info"
    ) -> None:
        await defer(interaction)  # acknowledge within Discord's 3 s, then edit the answer
        try:
            exported = await self.gateway.call(
                self.gateway.stub.ExportLorebook(
                    gw.ExportLorebookRequest(
                        actor=actor(interaction), lorebook=lorebook, format=_FORMATS[format]
                    )
                )
            )
        except TzurotError as err:
            await send(interaction, failure_text(err))
            return
        if not fits(interaction, len(exported.document)):
            await send(
                interaction,
                f"That lorebook is {len(exported.document) / 1e6:.1f} MB, more than Discord "
                "lets me attach here.",
            )
            return
        file = discord.File(io.BytesIO(exported.document), exported.filename)
        await send(interaction, f"`{exported.filename}`", file=file)

    @app_commands.command(name="list", description="Your lorebooks, or those attached somewhere")
    @app_commands.choices(attached_to=_SCOPE_CHOICES)
    @app_commands.describe(
        attached_to="Only those in play there: a personality, this channel, or global",
        personality="With attached_to personality: which one",
    )
    async def list_books(
        self,
        interaction: discord.Interaction,
        attached_to: str = "",
        personality: PersonalityName = "",
    ) -> None:
        request = gw.ListLorebooksRequest(actor=actor(interaction))
        if attached_to:
            request.attached_to.CopyFrom(_target(interaction, attached_to, personality))
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ListLorebooks(request),
            lambda r: render.lorebooks(list(r.lorebooks)),
        )

    @app_commands.command(name="attach", description="Put a lorebook in play")
    @app_commands.choices(scope=_SCOPE_CHOICES)
    @app_commands.describe(lorebook=LOREBOOK_HELP, scope=SCOPE_HELP, personality=PERSONALITY_HELP)
    async def attach(
        self,
        interaction: discord.Interaction,
        lorebook: Reference,
        scope: str,
        personality: PersonalityName = "",
    ) -> None:
        if not await self._checked(interaction, scope, personality):
            return
        target = _target(interaction, scope, personality)

        async def attached() -> tuple[bool, common.Lorebook]:
            # AttachLorebookResponse is the same whether it was in play there already or not.
            try:
                there = await self.gateway.call(
                    self.gateway.stub.ListLorebooks(
                        gw.ListLorebooksRequest(actor=actor(interaction), attached_to=target)
                    )
                )
            except TzurotError:
                there = gw.ListLorebooksResponse()  # unknown: told as a change
            done = await self.gateway.stub.AttachLorebook(
                gw.AttachLorebookRequest(
                    actor=actor(interaction),
                    lorebook=lorebook,
                    attachment=target,
                    manage_channels=_may_manage_channel(interaction),
                )
            )
            return done.lorebook.id in {b.id for b in there.lorebooks}, done.lorebook

        await reply(
            interaction,
            self.gateway,
            attached,
            lambda r: attached_text(r[1], scope, already=r[0]),
        )

    @app_commands.command(name="detach", description="Take a lorebook out of play")
    @app_commands.choices(scope=_SCOPE_CHOICES)
    @app_commands.describe(lorebook=LOREBOOK_HELP, scope=SCOPE_HELP, personality=PERSONALITY_HELP)
    async def detach(
        self,
        interaction: discord.Interaction,
        lorebook: Reference,
        scope: str,
        personality: PersonalityName = "",
    ) -> None:
        if not await self._checked(interaction, scope, personality):
            return
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.DetachLorebook(
                gw.DetachLorebookRequest(
                    actor=actor(interaction),
                    lorebook=lorebook,
                    attachment=_target(interaction, scope, personality),
                    manage_channels=_may_manage_channel(interaction),
                )
            ),
            lambda r: f"**{r.lorebook.name}** is out of play there ({scope}).",
        )

    @app_commands.command(name="delete", description="Delete one of your lorebooks")
    @app_commands.describe(lorebook="One of your lorebooks, by name or id")
    async def delete(self, interaction: discord.Interaction, lorebook: Reference) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.DeleteLorebook(
                gw.DeleteLorebookRequest(actor=actor(interaction), lorebook=lorebook)
            ),
            lambda _: "Deleted.",
        )

    @export.autocomplete("lorebook")
    @attach.autocomplete("lorebook")
    @detach.autocomplete("lorebook")
    @delete.autocomplete("lorebook")
    @import_book.autocomplete("replace")
    async def _lorebooks(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await lorebook_choices(self.gateway, interaction, current)

    @import_book.autocomplete("personality")
    @attach.autocomplete("personality")
    @detach.autocomplete("personality")
    async def _owned(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Attaching to a personality (or detaching from one) is for its owner."""
        return await owned_personality_choices(self.gateway, interaction, current)

    @list_books.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)
