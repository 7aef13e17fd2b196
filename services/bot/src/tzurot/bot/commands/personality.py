"""/personality delete beside /personality voice … (PersonalityVoiceCommands): the group
of what a personality's owner does to it.

Deleting asks for `confirm: DELETE`, as `/settings data delete` does; anything else shows
what would be lost and deletes nothing. Confirmed, it deletes only a personality named by its
slug (`chosen.py`): any other name is answered with the one it means and the slug to type.
The gateway decides who may (its owner, a superuser) and what a user may not see (someone
else's private personality reads as not found).
"""

from __future__ import annotations

import discord
import structlog
from discord import app_commands

from tzurot.bot.commands.chosen import CANNOT_UNDO, exact, gone_text, is_gone, is_slug, unsure_text
from tzurot.bot.commands.common import actor, confirmed, defer, send
from tzurot.bot.commands.lookups import owned_personality_choices
from tzurot.bot.commands.options import PersonalityName
from tzurot.bot.commands.personality_delete import (
    CONFIRM_HELP,
    DESCRIPTION,
    again,
    deleted_text,
    deletion_failed_text,
    not_deleted_text,
    warning_text,
)
from tzurot.bot.commands.voice import PersonalityVoiceCommands
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import gateway_pb2 as gw

log = structlog.get_logger(__name__)


class PersonalityCommands(PersonalityVoiceCommands):
    """`/personality delete`, and the voice commands of PersonalityVoiceCommands."""

    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(gateway, description="Personalities you own: their voice, or deleting one")

    @app_commands.command(name="delete", description=DESCRIPTION)
    @app_commands.describe(personality="One of yours", confirm=CONFIRM_HELP)
    async def delete(
        self, interaction: discord.Interaction, personality: PersonalityName, confirm: str
    ) -> None:
        await defer(interaction)
        who = actor(interaction)
        try:
            # What the warning names is exactly what is deleted (by its slug).
            found = await self.gateway.call(
                self.gateway.stub.GetPersonality(
                    gw.GetPersonalityRequest(actor=who, personality=personality)
                )
            )
        except TzurotError as err:
            await send(interaction, not_deleted_text(err, personality))
            return
        target = found.personality
        if not confirmed(confirm):
            await send(interaction, warning_text(target))
            return
        if not is_slug(personality, target):  # deletes only what the user saw they chose
            await send(
                interaction,
                unsure_text("Nothing deleted", personality, target, again(target), CANNOT_UNDO),
            )
            return
        try:
            await self.gateway.call(
                self.gateway.stub.DeletePersonality(
                    gw.DeletePersonalityRequest(actor=who, personality=exact(target))
                )
            )
        except TzurotError as err:
            log.info("bot.personality_not_deleted", slug=target.slug, reason=err.reason)
            gone = is_gone(err)  # made private or deleted since it was found
            await send(
                interaction,
                gone_text("Nothing deleted", target) if gone else deletion_failed_text(err, target),
            )
            return
        await send(interaction, deleted_text(target))

    @delete.autocomplete("personality")
    async def _owned(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await owned_personality_choices(self.gateway, interaction, current)
