"""/freewill on|off|status: personalities that speak up on their own in a channel."""

from __future__ import annotations

import discord
from discord import app_commands

from tzurot.bot.commands.common import actor, reply
from tzurot.bot.commands.lookups import personality_choices
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.v1 import gateway_pb2 as gw


def render_status(s: gw.FreeWillStatus) -> str:
    state = "on" if s.enabled else f"off ({s.disabled_reason})" if s.disabled_reason else "off"
    return (
        f"- **{s.personality.display_name}**: {state}; paid by {_payer(s)}; "
        f"{s.used_today}/{s.daily_budget} today; quiet {s.quiet_hours} ({s.timezone})"
    )


def _payer(s: gw.FreeWillStatus) -> str:
    """A Discord user as a mention; anyone else (a CLI user) by id."""
    return f"<@{s.payer_user_id}>" if s.payer_user_id.isdigit() else s.payer_user_id


def render_statuses(r: gw.GetFreeWillResponse) -> str:
    if not r.statuses:
        return "Free will is off here. `/freewill on` lets a personality speak up on its own."
    return "Free will in this channel:\n" + "\n".join(render_status(s) for s in r.statuses)


@app_commands.default_permissions(manage_channels=True)
@app_commands.guild_only()
class FreeWillCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="freewill", description="Personalities speaking up on their own")
        self.gateway = gateway

    @app_commands.command(name="on", description="Let a personality speak up here on its own")
    @app_commands.describe(
        personality="The personality that may speak up here",
        timezone="The server's time zone for quiet hours, e.g. Europe/Berlin",
        quiet_hours='Local hours it stays silent, e.g. "23-8" (the default)',
        daily_budget="Most spontaneous messages a day in this channel (default 3)",
    )
    @app_commands.checks.has_permissions(manage_channels=True)
    async def on(
        self,
        interaction: discord.Interaction,
        personality: str,
        timezone: str | None = None,
        quiet_hours: str | None = None,
        daily_budget: app_commands.Range[int, 1, 48] | None = None,
    ) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SetFreeWill(
                gw.SetFreeWillRequest(
                    actor=actor(interaction),
                    location=location,
                    personality=personality,
                    enabled=True,
                    timezone=timezone or "",
                    quiet_hours=quiet_hours or "",
                    daily_budget=daily_budget or 0,
                    manage_channels=bool(interaction.permissions.manage_channels),
                )
            ),
            lambda r: (
                f"**{r.status.personality.display_name}** may now speak up here on its own, "
                f"at most {r.status.daily_budget} times a day, never during "
                f"{r.status.quiet_hours} ({r.status.timezone}). Each message is paid with your "
                "key. `/freewill off` stops it."
            ),
            ephemeral=False,
        )

    @app_commands.command(name="off", description="Stop a personality speaking up on its own")
    @app_commands.describe(personality="The personality to stop speaking up here")
    @app_commands.checks.has_permissions(manage_channels=True)
    async def off(self, interaction: discord.Interaction, personality: str) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SetFreeWill(
                gw.SetFreeWillRequest(
                    actor=actor(interaction),
                    location=location,
                    personality=personality,
                    enabled=False,
                    manage_channels=bool(interaction.permissions.manage_channels),
                )
            ),
            lambda r: (
                f"**{r.status.personality.display_name}** no longer speaks up on its own here."
            ),
            ephemeral=False,
        )

    @app_commands.command(name="status", description="Free will in this channel")
    async def status(self, interaction: discord.Interaction) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.GetFreeWill(gw.GetFreeWillRequest(location=location)),
            render_statuses,
        )

    @on.autocomplete("personality")
    @off.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            await interaction.response.send_message(
                "You need the Manage Channels permission for this.", ephemeral=True
            )
            return
        raise error
