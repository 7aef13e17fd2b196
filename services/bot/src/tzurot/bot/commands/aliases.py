"""/alias add|remove|list: a user's own names for personalities. Only they use them, and for
them one wins over a global alias of the same name (the reply says which it hides)."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands.common import actor, choices, reply
from tzurot.bot.commands.lookups import cached_values, personality_choices
from tzurot.bot.commands.options import AliasName, PersonalityName
from tzurot.bot.gateway_client import GatewayClient
from tzurot.v1 import gateway_pb2 as gw


def added(alias: gw.PersonalAlias) -> str:
    name = alias.personality.display_name
    text = f"For you, `@{alias.alias}` now means **{name}**."
    if alias.shadows:
        text += f" (For everyone else it still means **{alias.shadows}**.)"
    return text


def listed(aliases: list[gw.PersonalAlias]) -> str:
    if not aliases:
        return "You have no aliases of your own. Add one with `/alias add`."
    lines = ["Your aliases (only you use them):"]
    for a in aliases[:50]:
        hides = f" (instead of {a.shadows})" if a.shadows else ""
        lines.append(f"- `@{a.alias}` → **{a.personality.display_name}**{hides}")
    return "\n".join(lines)


class AliasCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="alias", description="Your own names for personalities")
        self.gateway = gateway

    @app_commands.command(name="add", description="Call a personality by a name of your own")
    @app_commands.describe(
        personality="The personality the alias is for",
        alias="The name you will @mention it by, e.g. lili (no @ needed)",
    )
    async def add(
        self, interaction: discord.Interaction, personality: PersonalityName, alias: AliasName
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.AddPersonalAlias(
                gw.AddPersonalAliasRequest(
                    actor=actor(interaction), personality=personality, alias=alias
                )
            ),
            lambda r: added(r.alias),
        )

    @app_commands.command(name="remove", description="Forget one of your aliases")
    @app_commands.describe(alias="One of your aliases (from /alias list)")
    async def remove(self, interaction: discord.Interaction, alias: AliasName) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.RemovePersonalAlias(
                gw.RemovePersonalAliasRequest(actor=actor(interaction), alias=alias)
            ),
            lambda _: f"Removed your alias `@{alias.lstrip('@')}`.",
        )

    @app_commands.command(name="list", description="Your aliases")
    async def list_aliases(self, interaction: discord.Interaction) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ListPersonalAliases(
                gw.ListPersonalAliasesRequest(actor=actor(interaction))
            ),
            lambda r: listed(list(r.aliases)),
        )

    @remove.autocomplete("alias")
    async def _aliases(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        async def fetch() -> list[str]:
            listed = await self.gateway.call(
                self.gateway.stub.ListPersonalAliases(
                    gw.ListPersonalAliasesRequest(actor=actor(interaction))
                )
            )
            return [a.alias for a in listed.aliases]

        return choices(await cached_values("aliases", interaction, fetch), current)

    @add.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)
