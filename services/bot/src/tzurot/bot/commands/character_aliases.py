"""/character alias add|remove: a personality's global aliases, the other names everyone
@mentions it by (its owner's or a superuser's to change; the gateway decides who may).

A user's own names for personalities are `/alias` (aliases.py). `remove` first checks that
the alias is the named personality's: an owner of two personalities never removes the other
one's alias by a slip; and it removes one only from a personality named by its slug
(`chosen.py`), so a name that means another personality than the one the owner has in mind
removes nothing. Its RemoveAlias then names that personality by its id (`exact`): an alias
moved to another personality in between is not removed from it (the gateway refuses,
ALIAS_NOT_FOUND), nor from a personality deleted or made private in between (`gone_text`).
"""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands.chosen import (
    CANNOT_UNDO,
    code_span,
    exact,
    gone_text,
    is_gone,
    is_slug,
    unsure_text,
    with_slug,
)
from tzurot.bot.commands.common import actor, choices, defer, failure_text, reply, send
from tzurot.bot.commands.lookups import cached_values, owned_personality_choices
from tzurot.bot.commands.options import AliasName, PersonalityName
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

REMOVE = "/character alias remove"
NOTHING = "Nothing removed"


def alias_key(alias: str) -> str:
    """How the gateway matches an alias: case-insensitively, whitespace collapsed, without a
    leading '@' (the gateway's `normalize_alias`)."""
    return " ".join(alias.strip().lstrip("@").casefold().split())


def held_alias(personality: common.Personality, alias: str) -> str | None:
    """The alias of `personality` that `alias` names (as it is stored), or None."""
    key = alias_key(alias)
    return next((a for a in personality.aliases if alias_key(a) == key), None)


def added_text(personality: common.Personality, alias: str) -> str:
    return (
        f"`@{alias.strip().lstrip('@')}` now means **{personality.display_name}** for everyone. "
        f"Its aliases: {aliases_text(personality)}."
    )


def aliases_text(personality: common.Personality) -> str:
    return ", ".join(f"`@{a}`" for a in personality.aliases) or "none"


def not_held_text(personality: common.Personality, alias: str) -> str:
    return (
        f"`@{alias.strip().lstrip('@')}` is not an alias of **{personality.display_name}** "
        f"(its aliases: {aliases_text(personality)})."
    )


class CharacterAliasCommands(app_commands.Group):
    """/character alias add|remove."""

    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="alias", description="Other names everyone @mentions it by")
        self.gateway = gateway

    @app_commands.command(name="add", description="Owners: another name everyone calls it by")
    @app_commands.describe(
        personality="A personality you own",
        alias="The name to @mention it by, e.g. lili (no @ needed)",
    )
    async def add(
        self, interaction: discord.Interaction, personality: PersonalityName, alias: AliasName
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.AddAlias(
                gw.AddAliasRequest(actor=actor(interaction), personality=personality, alias=alias)
            ),
            lambda r: added_text(r.personality, alias),
        )

    @app_commands.command(name="remove", description="Owners: it is no longer called by a name")
    @app_commands.describe(
        personality="A personality you own",
        alias="One of its aliases (they autocomplete)",
    )
    async def remove(
        self, interaction: discord.Interaction, personality: PersonalityName, alias: AliasName
    ) -> None:
        await defer(interaction)
        who = actor(interaction)
        try:
            found = await self.gateway.call(
                self.gateway.stub.GetPersonality(
                    gw.GetPersonalityRequest(actor=who, personality=personality)
                )
            )
        except TzurotError as err:
            await send(interaction, failure_text(err))
            return
        target = found.personality
        held = held_alias(target, alias)
        if held is None:
            await send(interaction, not_held_text(target, alias))
            return
        if not is_slug(personality, target):
            again = with_slug(REMOVE, target, f" and {code_span(f'alias: {held}')}")
            await send(interaction, unsure_text(NOTHING, personality, target, again, CANNOT_UNDO))
            return
        try:  # by its id: only while it is the checked one's (chosen.py)
            await self.gateway.call(
                self.gateway.stub.RemoveAlias(
                    gw.RemoveAliasRequest(actor=who, alias=held, personality=exact(target))
                )
            )
        except TzurotError as err:
            gone = is_gone(err)
            await send(interaction, gone_text(NOTHING, target) if gone else failure_text(err))
            return
        await send(interaction, f"`@{held}` no longer means **{target.display_name}**.")

    @add.autocomplete("personality")
    @remove.autocomplete("personality")
    async def _owned(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await owned_personality_choices(self.gateway, interaction, current)

    @remove.autocomplete("alias")
    async def _aliases(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        name = str(getattr(interaction.namespace, "personality", "") or "")
        if not name:
            return []

        async def fetch() -> list[str]:
            found = await self.gateway.call(
                self.gateway.stub.GetPersonality(
                    gw.GetPersonalityRequest(actor=actor(interaction), personality=name)
                )
            )
            return list(found.personality.aliases)

        return choices(await cached_values(f"aliases of {name}", interaction, fetch), current)
