"""/notifications subscribe|unsubscribe (server admins), /changelog, /admin announce
(added to the /admin group of admin.py)."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from tzurot.bot.commands.common import actor, reply
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.v1 import gateway_pb2 as gw


@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
class NotificationCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="notifications", description="Release notes in this channel")
        self.gateway = gateway

    @app_commands.command(name="subscribe", description="Post each new release's notes here")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def subscribe(self, interaction: discord.Interaction) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SubscribeNotifications(
                gw.SubscribeNotificationsRequest(
                    actor=actor(interaction),
                    location=location,
                    manage_guild=bool(interaction.permissions.manage_guild),
                )
            ),
            lambda r: (
                "This channel will get the notes of every release after "
                f"{r.version or 'this one'}. `/changelog` shows the latest."
            ),
            ephemeral=False,
        )

    @app_commands.command(name="unsubscribe", description="Stop posting release notes here")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def unsubscribe(self, interaction: discord.Interaction) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.UnsubscribeNotifications(
                gw.UnsubscribeNotificationsRequest(
                    actor=actor(interaction),
                    location=location,
                    manage_guild=bool(interaction.permissions.manage_guild),
                )
            ),
            lambda _: "This channel no longer gets release notes.",
            ephemeral=False,
        )

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            await interaction.response.send_message(
                "You need the Manage Server permission for this.", ephemeral=True
            )
            return
        raise error


def changelog_command(gateway: GatewayClient) -> app_commands.Command[Any, Any, None]:
    @app_commands.command(name="changelog", description="What is new in this Tzurot")
    @app_commands.describe(version="A release, e.g. 0.1.0 (default: the running one)")
    async def changelog(interaction: discord.Interaction, version: str | None = None) -> None:
        await reply(
            interaction,
            gateway,
            lambda: gateway.stub.GetChangelog(gw.GetChangelogRequest(version=version or "")),
            lambda r: r.discord_text,
        )

    return changelog


def announce_command(gateway: GatewayClient) -> app_commands.Command[Any, Any, None]:
    """/admin announce: the gateway refuses anyone but a superuser."""

    @app_commands.command(name="announce", description="Post to every subscribed channel")
    @app_commands.describe(text="The message to post in every subscribed channel")
    async def announce(interaction: discord.Interaction, text: str) -> None:
        await reply(
            interaction,
            gateway,
            lambda: gateway.stub.Announce(gw.AnnounceRequest(actor=actor(interaction), text=text)),
            lambda r: f"Announcement queued for {r.channels} subscribed channel(s).",
        )

    return announce
