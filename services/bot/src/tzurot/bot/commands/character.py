"""/character create|edit|view|browse|import|export|avatar|link_previews and /character alias
add|remove (the gateway lets owners and superusers edit; character cards V2/V3 as PNG, JSON or
CHARX in and out). `edit` and `avatar` overwrite for good, so they act only on a personality
named by its slug (`chosen.py`)."""

from __future__ import annotations

import io

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.character_aliases import CharacterAliasCommands
from tzurot.bot.commands.character_fields import EDITABLE, BadValue, edit_request
from tzurot.bot.commands.chosen import REPLACES, act_on_chosen, exact, named, with_slug
from tzurot.bot.commands.common import (
    actor,
    defer,
    failure_text,
    fits,
    reply,
    send,
    with_warnings,
)
from tzurot.bot.commands.lookups import owned_personality_choices, personality_choices
from tzurot.bot.commands.options import NewName, PersonalityName
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

MAX_IMPORT_BYTES = 16 * 1024 * 1024
"""The gateway's own limit for a card (Discord's upload limit is usually lower)."""
EXPORT_FORMATS = {
    "png": gw.CARD_FORMAT_PNG,
    "json": gw.CARD_FORMAT_JSON,
    "charx": gw.CARD_FORMAT_CHARX,
}
MAX_AVATAR_BYTES = 8 * 1024 * 1024


def imported_text(r: gw.ImportPersonalityResponse) -> str:
    """What a card import did, with its slug (a name in another script gets `char-…`) and
    what it could not keep (e.g. a picture that cannot be the avatar, its lorebook's uids
    renumbered), within one Discord message (`with_warnings`)."""
    verb = "Imported" if r.created else "Updated"
    head = f"{verb} **{r.personality.display_name}** (`{r.personality.slug}`)."
    return with_warnings(head, r.warnings)


def link_previews_text(suppressed_before: bool, p: common.Personality) -> str:
    """What `/character link_previews` did: shown or hidden now, or already so before."""
    state = "hidden" if p.suppress_embeds else "shown"
    if suppressed_before == p.suppress_embeds:
        return f"Link previews in **{p.display_name}**'s answers were already {state}."
    return f"Link previews in **{p.display_name}**'s answers are now {state}."


def _of(changed: common.Personality, p: common.Personality) -> common.Personality:
    """The `changed` fields for exactly `p`: by its id alone (`chosen.exact`), which the
    gateway never reads as another personality's name."""
    mine = common.Personality()
    mine.CopyFrom(changed)
    mine.slug = "" if p.id else p.slug
    mine.id = p.id
    return mine


class CharacterCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="character", description="Personalities: create, edit, share")
        self.gateway = gateway
        self.add_command(CharacterAliasCommands(gateway))

    @app_commands.command(name="create", description="Create a personality")
    @app_commands.describe(
        name="Its display name, which people @mention it by",
        system_prompt="Who it is and how it answers: its instructions to the model",
        description="Its character description (optional)",
        public="Anyone may find and talk to it (default: only you)",
    )
    async def create(
        self,
        interaction: discord.Interaction,
        name: NewName,
        system_prompt: str,
        description: str = "",
        public: bool = False,
    ) -> None:
        personality = common.Personality(
            display_name=name,
            system_prompt=system_prompt,
            character=common.CharacterFields(description=description),
            public=public,
        )
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.CreatePersonality(
                gw.CreatePersonalityRequest(actor=actor(interaction), personality=personality)
            ),
            lambda r: (
                f"Created **{r.personality.display_name}**. Say hi with "
                f"`@{r.personality.display_name}`."
            ),
        )

    @app_commands.command(name="edit", description="Change one field of a personality you own")
    @app_commands.choices(field=[app_commands.Choice(name=k, value=k) for k in EDITABLE])
    @app_commands.describe(
        personality="A personality you own",
        field="Which field to change",
        value="The new text; author_note_depth: 2-4; cleanup_rules: a JSON list of "
        '{"pattern", "replacement"}',
    )
    async def edit(
        self, interaction: discord.Interaction, personality: PersonalityName, field: str, value: str
    ) -> None:
        try:
            changed, path = edit_request(personality, field, value)
        except BadValue as bad:
            await send(interaction, str(bad))
            return
        await act_on_chosen(
            interaction,
            self.gateway,
            personality,
            nothing="Nothing changed",
            why=REPLACES,
            again=lambda p: with_slug("/character edit", p, f" and `field: {field}`"),
            rpc=lambda p: self.gateway.stub.UpdatePersonality(
                gw.UpdatePersonalityRequest(
                    actor=actor(interaction), personality=_of(changed, p), update_paths=[path]
                )
            ),
            render=lambda r, _: f"Updated {field} of {named(r.personality)}.",
        )

    @app_commands.command(name="view", description="Show a personality")
    @app_commands.describe(personality="The personality to show")
    async def view(self, interaction: discord.Interaction, personality: PersonalityName) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.GetPersonality(
                gw.GetPersonalityRequest(actor=actor(interaction), personality=personality)
            ),
            lambda r: render.character(r.personality),
        )

    @app_commands.command(name="browse", description="Personalities you can talk to")
    @app_commands.describe(mine="Only the ones you own")
    async def browse(self, interaction: discord.Interaction, mine: bool = False) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ListPersonalities(
                gw.ListPersonalitiesRequest(actor=actor(interaction), owned_only=mine)
            ),
            lambda r: render.character_list(list(r.personalities)),
        )

    @app_commands.command(
        name="import", description="Import a character card (PNG, JSON or CHARX; V2 or V3)"
    )
    @app_commands.describe(card="The card file: PNG, JSON or CHARX, 16 MB at most")
    async def import_card(self, interaction: discord.Interaction, card: discord.Attachment) -> None:
        if card.size > MAX_IMPORT_BYTES:
            await send(interaction, "That file is too large for a character card (16 MB at most).")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        document = await card.read()
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ImportPersonality(
                gw.ImportPersonalityRequest(
                    actor=actor(interaction),
                    format=gw.IMPORT_FORMAT_CHARACTER_CARD,
                    document=document,
                )
            ),
            imported_text,
        )

    @app_commands.command(
        name="export", description="Download a personality as a V3 character card"
    )
    @app_commands.choices(
        format=[app_commands.Choice(name=name, value=name) for name in EXPORT_FORMATS]
    )
    @app_commands.describe(
        personality="The personality to export",
        format="png (the default, with its picture), json (no picture) or charx",
    )
    async def export(
        self, interaction: discord.Interaction, personality: PersonalityName, format: str = "png"
    ) -> None:
        await defer(interaction)
        try:
            exported = await self.gateway.call(
                self.gateway.stub.ExportPersonality(
                    gw.ExportPersonalityRequest(
                        actor=actor(interaction),
                        personality=personality,
                        format=EXPORT_FORMATS.get(format, gw.CARD_FORMAT_PNG),
                    )
                )
            )
        except TzurotError as err:
            await send(interaction, failure_text(err))
            return
        if not fits(interaction, len(exported.document)):
            await send(
                interaction,
                f"That card is {len(exported.document) / 1e6:.1f} MB, more than Discord lets me "
                "attach here; try `format: json`, which leaves the picture out.",
            )
            return
        file = discord.File(io.BytesIO(exported.document), exported.filename)
        await send(
            interaction,
            f"`{exported.filename}`: a Character Card V3 (import it here or in any V3 app).",
            file=file,
        )

    @app_commands.command(name="avatar", description="Set a personality's avatar (an image)")
    @app_commands.describe(
        personality="A personality you own",
        image="A PNG, JPEG, GIF or WebP image, 8 MB at most",
    )
    async def avatar(
        self,
        interaction: discord.Interaction,
        personality: PersonalityName,
        image: discord.Attachment,
    ) -> None:
        # Discord's attachment URLs are signed and expire: the image is kept by Tzurot and
        # served from TZUROT_PUBLIC_URL instead.
        await defer(interaction)
        if not (image.content_type or "").startswith("image/"):
            await send(interaction, "The avatar must be an image (PNG, JPEG, GIF or WebP).")
            return
        if image.size > MAX_AVATAR_BYTES:
            await send(interaction, "That image is too large for an avatar (8 MB at most).")
            return
        try:
            data = await image.read()
        except discord.HTTPException:
            await send(interaction, "I could not download that image from Discord; try again.")
            return
        await act_on_chosen(
            interaction,
            self.gateway,
            personality,
            nothing="Avatar not changed",
            why=REPLACES,
            again=lambda p: with_slug("/character avatar", p, " and the image"),
            rpc=lambda p: self.gateway.stub.SetAvatar(
                gw.SetAvatarRequest(actor=actor(interaction), personality=exact(p), image=data)
            ),
            render=lambda _, p: f"New avatar for {named(p)}.",
        )

    @app_commands.command(
        name="link_previews", description="Show or hide link previews in a personality's answers"
    )
    @app_commands.describe(
        personality="A personality you own",
        show="True shows link previews in its answers; false hides them (links stay clickable)",
    )
    async def link_previews(
        self, interaction: discord.Interaction, personality: PersonalityName, show: bool
    ) -> None:
        # Hidden: answers post with Discord's SUPPRESS_EMBEDS flag (links stay clickable).

        async def changed() -> tuple[bool, common.Personality]:
            before = await self.gateway.stub.GetPersonality(
                gw.GetPersonalityRequest(actor=actor(interaction), personality=personality)
            )
            after = await self.gateway.stub.UpdatePersonality(
                gw.UpdatePersonalityRequest(
                    actor=actor(interaction),
                    personality=common.Personality(slug=personality, suppress_embeds=not show),
                    update_paths=["suppress_embeds"],
                )
            )
            return before.personality.suppress_embeds, after.personality

        await reply(interaction, self.gateway, changed, lambda r: link_previews_text(*r))

    @edit.autocomplete("personality")
    @avatar.autocomplete("personality")
    async def _owned_slugs(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        # By slug: these act only on a personality named by its slug (chosen.py).
        return await owned_personality_choices(self.gateway, interaction, current)

    @link_previews.autocomplete("personality")
    @view.autocomplete("personality")
    @export.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)
