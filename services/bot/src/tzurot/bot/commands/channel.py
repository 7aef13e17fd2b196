"""/channel activate|deactivate: a personality answers every message in a channel."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands.common import actor, reply
from tzurot.bot.commands.lookups import personality_choices
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.v1 import gateway_pb2 as gw


@app_commands.default_permissions(manage_channels=True)
@app_commands.guild_only()
class ChannelCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="channel", description="Personalities that answer in a channel")
        self.gateway = gateway

    @app_commands.command(name="activate", description="A personality answers every message here")
    @app_commands.checks.has_permissions(manage_channels=True)
    async def activate(self, interaction: discord.Interaction, personality: str) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ActivateChannel(
                gw.ActivateChannelRequest(
                    actor=actor(interaction), location=location, personality=personality
                )
            ),
            lambda r: (
                f"**{r.activation.personality.display_name}** now answers every message "
                "here. `/channel deactivate` stops it."
            ),
            ephemeral=False,
        )

    @activate.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)

    @app_commands.command(name="deactivate", description="Stop answering every message here")
    @app_commands.checks.has_permissions(manage_channels=True)
    async def deactivate(self, interaction: discord.Interaction) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.DeactivateChannel(
                gw.DeactivateChannelRequest(actor=actor(interaction), location=location)
            ),
            lambda _: "No personality answers every message here any more.",
            ephemeral=False,
        )

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            await interaction.response.send_message(
                "You need the Manage Channels permission for this.", ephemeral=True
            )
            return
        raise error
