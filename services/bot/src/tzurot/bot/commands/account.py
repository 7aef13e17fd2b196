"""/timezone, /usage, /persona, /history and /settings data (DataCommands): the user's own
things."""

from __future__ import annotations

import io
from typing import Any

import discord
from discord import app_commands

from tzurot.bot.commands import render
from tzurot.bot.commands.chosen import CANNOT_UNDO, act_on_chosen, exact, with_slug
from tzurot.bot.commands.common import (
    CONFIRM_WORD,
    actor,
    confirmed,
    failure_text,
    fits,
    reply,
    send,
)
from tzurot.bot.commands.lookups import personality_choices, personality_slug_choices
from tzurot.bot.commands.options import PersonalityName, PersonaText, TimezoneName
from tzurot.bot.commands.words import plural
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import gateway_pb2 as gw

EVERYONE = " and `everyone: True`"


class TimezoneCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="timezone", description="Your time zone, for dates in answers")
        self.gateway = gateway

    @app_commands.command(name="set", description="Set your IANA time zone")
    @app_commands.describe(zone="An IANA time zone name, e.g. Europe/Berlin or America/New_York")
    async def set_zone(self, interaction: discord.Interaction, zone: TimezoneName) -> None:
        problem = render.check_timezone(zone)
        if problem:
            await send(interaction, problem)
            return
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SetTimezone(
                gw.SetTimezoneRequest(actor=actor(interaction), timezone=zone)
            ),
            lambda r: render.timezone(r.user),
        )

    @set_zone.autocomplete("zone")
    async def _zones(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=z, value=z) for z in render.timezone_names(current)]

    @app_commands.command(name="get", description="Show your time zone")
    async def get_zone(self, interaction: discord.Interaction) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.GetUser(gw.GetUserRequest(actor=actor(interaction))),
            lambda r: render.timezone(r.user),
        )


def usage_command(gateway: GatewayClient) -> app_commands.Command[Any, Any, None]:
    @app_commands.command(name="usage", description="Your token usage")
    @app_commands.choices(
        period=[app_commands.Choice(name=p, value=p) for p in ("day", "week", "month")]
    )
    @app_commands.describe(
        period="How far back: the last day (the default), week (7 days) or month (30 days)"
    )
    async def usage(interaction: discord.Interaction, period: str = "day") -> None:
        await reply(
            interaction,
            gateway,
            lambda: gateway.stub.GetUsage(
                gw.GetUsageRequest(actor=actor(interaction), period=render.PERIODS[period])
            ),
            lambda r: render.usage(r, period),
        )

    return usage


class PersonaCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="persona", description="Who you are to the personalities")
        self.gateway = gateway

    @app_commands.command(name="set", description="Your name, pronouns and a few words")
    @app_commands.describe(
        preferred_name="What personalities call you",
        pronouns="Your pronouns, e.g. she/her (optional)",
        description="A few words about you that personalities know (optional)",
        personality="Only toward this personality (default: your persona for all of them)",
    )
    async def set_persona(
        self,
        interaction: discord.Interaction,
        preferred_name: PersonaText,
        pronouns: PersonaText = "",
        description: PersonaText = "",
        personality: PersonalityName = "",
    ) -> None:
        persona = gw.Persona(
            name=preferred_name,
            preferred_name=preferred_name,
            pronouns=pronouns,
            description=description,
        )
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SetPersona(
                gw.SetPersonaRequest(
                    actor=actor(interaction), personality=personality, persona=persona
                )
            ),
            lambda r: render.persona(gw.GetPersonaResponse(persona=r.persona)),
        )

    @app_commands.command(name="view", description="Show your persona")
    @app_commands.describe(personality="Your persona toward this personality (default: for all)")
    async def view(
        self, interaction: discord.Interaction, personality: PersonalityName = ""
    ) -> None:
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.GetPersona(
                gw.GetPersonaRequest(actor=actor(interaction), personality=personality)
            ),
            render.persona,
        )

    @set_persona.autocomplete("personality")
    @view.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)


@app_commands.guild_only()  # "your conversation here": the bot answers in no DM
class HistoryCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="history", description="Your conversation here")
        self.gateway = gateway

    @app_commands.command(name="clear", description="Forget your conversation with it here")
    @app_commands.describe(
        personality="The personality whose conversation in this channel to forget",
        everyone="Everyone's conversation with it here, not only yours (needs Manage Channels)",
    )
    async def clear(
        self, interaction: discord.Interaction, personality: PersonalityName, everyone: bool = False
    ) -> None:
        location = location_of(interaction.channel, interaction.guild)
        whose = "everyone's" if everyone else "your"
        await act_on_chosen(
            interaction,
            self.gateway,
            personality,
            nothing="Nothing cleared",
            why=CANNOT_UNDO,
            again=lambda p: with_slug("/history clear", p, EVERYONE if everyone else ""),
            rpc=lambda p: self.gateway.stub.ClearHistory(
                gw.ClearHistoryRequest(
                    actor=actor(interaction),
                    location=location,
                    personality=exact(p),
                    everyone=everyone,
                    manage_channels=bool(interaction.permissions.manage_channels),
                )
            ),
            render=lambda r, p: (
                f"Cleared {plural(r.deleted_turns, 'message')} of {whose} history with "
                f"{p.display_name or p.slug}."
            ),
        )

    @app_commands.command(name="undo", description="Forget your last exchange here")
    @app_commands.describe(
        personality="The personality your last exchange in this channel was with"
    )
    async def undo(self, interaction: discord.Interaction, personality: PersonalityName) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await act_on_chosen(
            interaction,
            self.gateway,
            personality,
            nothing="Nothing removed",
            why=CANNOT_UNDO,
            again=lambda p: with_slug("/history undo", p),
            rpc=lambda p: self.gateway.stub.UndoLastExchange(
                gw.UndoLastExchangeRequest(
                    actor=actor(interaction), location=location, personality=exact(p)
                )
            ),
            render=lambda r, _: f"Removed {plural(len(r.removed), 'message')} from history.",
        )

    @clear.autocomplete("personality")
    @undo.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        # By slug: these act only on a personality named by its slug (chosen.py).
        return await personality_slug_choices(self.gateway, interaction, current)


class DataCommands(app_commands.Group):
    """/settings data export|delete."""

    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="data", description="Everything stored about you")
        self.gateway = gateway

    @app_commands.command(name="export", description="Download everything stored about you")
    @app_commands.describe(
        part="A large export comes in parts: 1 (the default) first, then the one each reply names"
    )
    async def export(
        self, interaction: discord.Interaction, part: app_commands.Range[int, 1, 10_000] = 1
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            archive = await self.gateway.call(
                self.gateway.stub.ExportUserData(
                    gw.ExportUserDataRequest(actor=actor(interaction), part=part)
                )
            )
        except TzurotError as err:
            await send(interaction, failure_text(err))
            return
        name = archive.filename or "tzurot-data.zip"
        heading = render.data_export(archive.part, archive.parts)
        await send_archive(interaction, archive.archive, name, heading)

    @app_commands.command(name="delete", description="Erase everything stored about you")
    @app_commands.describe(
        confirm=f"Type {CONFIRM_WORD} to erase it all; anything else deletes nothing"
    )
    async def delete(self, interaction: discord.Interaction, confirm: str) -> None:
        if not confirmed(confirm):
            await send(
                interaction, f"Nothing deleted: type `{CONFIRM_WORD}` in `confirm` to erase it all."
            )
            return
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.DeleteUserData(
                gw.DeleteUserDataRequest(actor=actor(interaction))
            ),
            lambda r: f"Erased ({plural(r.deleted_rows, 'record')}).",
        )


async def send_archive(
    interaction: discord.Interaction, data: bytes, name: str, heading: str
) -> None:
    """The archive, after `heading` (which export part it is), as one file when it fits the
    interaction's `attachment_size_limit`; else said so, and sent as numbered pieces that
    each fit (join them back in order)."""
    limit = interaction.filesize_limit
    if fits(interaction, len(data)):
        await send(interaction, heading, file=discord.File(io.BytesIO(data), name))
        return
    pieces = [data[i : i + limit] for i in range(0, len(data), limit)]
    await send(
        interaction,
        f"{heading}\nThis zip is {len(data) / 1e6:.1f} MB, more than the {limit / 1e6:.0f} MB "
        f"Discord lets me attach here, so it comes in {len(pieces)} smaller pieces. Join them "
        f"in order (`cat {name}.* > {name}`) to get the zip.",
    )
    for number, piece in enumerate(pieces, 1):
        await interaction.followup.send(
            file=discord.File(io.BytesIO(piece), f"{name}.{number:03d}"), ephemeral=True
        )
