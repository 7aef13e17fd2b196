"""/freewill on|off|status: personalities that speak up on their own in a channel."""

from __future__ import annotations

from collections.abc import Callable

import discord
from discord import app_commands

from tzurot.bot.commands.common import actor, reply
from tzurot.bot.commands.lookups import personality_choices
from tzurot.bot.commands.options import PersonalityName
from tzurot.bot.commands.words import plural
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.runtime.errors import TzurotError
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


def switched_on_text(was: gw.FreeWillStatus | None, now: gw.FreeWillStatus) -> str:
    """What `/freewill on` did: switched it on, or found it on already (`was`: the status
    before, None when it had none here); either way the settings now in force."""
    limits = (
        f"at most {plural(now.daily_budget, 'time')} a day, "
        f"never during {now.quiet_hours} ({now.timezone})"
    )
    name = now.personality.display_name
    if was is not None and was.enabled:
        now_yours = "now " if was.payer_user_id != now.payer_user_id else ""
        return (
            f"**{name}** already speaks up here on its own: {limits}. Each message is "
            f"{now_yours}paid with your key. `/freewill off` stops it."
        )
    return (
        f"**{name}** may now speak up here on its own, {limits}. Each message is paid with "
        "your key. `/freewill off` stops it."
    )


def switched_off_text(was: gw.FreeWillStatus | None, now: gw.FreeWillStatus) -> str:
    """What `/freewill off` did: switched it off, or found it off already (by `/freewill off`,
    or by Tzurot, with its reason)."""
    name = now.personality.display_name
    if was is not None and not was.enabled:
        why = f" (switched off by Tzurot: {was.disabled_reason})" if was.disabled_reason else ""
        return f"Free will was already off for **{name}** here{why}; nothing changed."
    return f"**{name}** no longer speaks up on its own here."


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
        personality: PersonalityName,
        timezone: str | None = None,
        quiet_hours: str | None = None,
        daily_budget: app_commands.Range[int, 1, 48] | None = None,
    ) -> None:
        request = gw.SetFreeWillRequest(
            actor=actor(interaction),
            location=location_of(interaction.channel, interaction.guild),
            personality=personality,
            enabled=True,
            timezone=timezone or "",
            quiet_hours=quiet_hours or "",
            daily_budget=daily_budget or 0,
            manage_channels=bool(interaction.permissions.manage_channels),
        )
        await self._switch(interaction, request, switched_on_text)

    @app_commands.command(name="off", description="Stop a personality speaking up on its own")
    @app_commands.describe(personality="The personality to stop speaking up here")
    @app_commands.checks.has_permissions(manage_channels=True)
    async def off(self, interaction: discord.Interaction, personality: PersonalityName) -> None:
        request = gw.SetFreeWillRequest(
            actor=actor(interaction),
            location=location_of(interaction.channel, interaction.guild),
            personality=personality,
            enabled=False,
            manage_channels=bool(interaction.permissions.manage_channels),
        )
        await self._switch(interaction, request, switched_off_text)

    async def _switch(
        self,
        interaction: discord.Interaction,
        request: gw.SetFreeWillRequest,
        render: Callable[[gw.FreeWillStatus | None, gw.FreeWillStatus], str],
    ) -> None:
        """SetFreeWill, told against the status before it: SetFreeWillResponse only has the
        status after, the same whether this call changed it or it already was so."""

        async def switched() -> tuple[gw.FreeWillStatus | None, gw.FreeWillStatus]:
            try:
                before = await self.gateway.call(
                    self.gateway.stub.GetFreeWill(gw.GetFreeWillRequest(location=request.location))
                )
            except TzurotError:
                before = gw.GetFreeWillResponse()  # unknown: told as a change
            after = (await self.gateway.stub.SetFreeWill(request)).status
            was = next(
                (s for s in before.statuses if s.personality.id == after.personality.id), None
            )
            return was, after

        await reply(interaction, self.gateway, switched, lambda r: render(*r), ephemeral=False)

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
