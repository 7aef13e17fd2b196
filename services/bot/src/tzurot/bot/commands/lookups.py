"""Autocomplete sources shared by several commands."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands.common import actor, choices
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import gateway_pb2 as gw


async def personality_choices(
    gateway: GatewayClient, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    try:
        found = await gateway.personalities(actor(interaction))
    except TzurotError:
        return []
    return choices([p.display_name for p in found], current)


async def config_choices(
    gateway: GatewayClient, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    try:
        listed = await gateway.call(
            gateway.stub.ListLlmConfigs(gw.ListLlmConfigsRequest(actor=actor(interaction)))
        )
    except TzurotError:
        return []
    typed = current.casefold()
    return [
        app_commands.Choice(name=f"{c.name} ({c.provider}/{c.model})"[:100], value=c.id)
        for c in listed.configs
        if typed in c.name.casefold() or typed in c.model.casefold()
    ][:25]
