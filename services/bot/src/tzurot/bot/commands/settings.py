"""/settings view|set|reset (the settings cascade) and /settings data export|delete.

A setting is written at one level: `me` (you, or you toward one personality), `personality`
(its owner), `channel` (Manage Channels here) or `global` (superusers). The gateway decides who
may; the bot only tells it what Discord says about the actor's permissions in the channel.
"""

from __future__ import annotations

import contextlib

import discord
from discord import app_commands
from google.protobuf import struct_pb2

from tzurot.bot.commands.account import DataCommands
from tzurot.bot.commands.common import (
    NO_CHANNEL_IN_DM,
    actor,
    choice_name,
    choices,
    choosable,
    in_dm,
    reply,
    send,
)
from tzurot.bot.commands.lookups import personality_choices
from tzurot.bot.commands.names import named_reply
from tzurot.bot.commands.options import PersonalityName
from tzurot.bot.commands.render import SOURCES
from tzurot.bot.gateway_client import GatewayClient, location_of
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

LEVELS = ("me", "personality", "channel", "global")
LEVEL_HELP = "me (default), personality (its owner), channel (Manage Channels), global (superusers)"
PERSONALITY_HELP = "Level me: you toward it; level personality: the one you own"


def scope_of(level: str, personality: str) -> common.ConfigSource.ValueType:
    if level == "personality":
        return common.CONFIG_SOURCE_PERSONALITY
    if level == "channel":
        return common.CONFIG_SOURCE_CHANNEL
    if level == "global":
        return common.CONFIG_SOURCE_GLOBAL
    return common.CONFIG_SOURCE_USER_PERSONALITY if personality else common.CONFIG_SOURCE_USER


def value_of(text: str) -> struct_pb2.Value:
    """What was typed as a JSON value: true/false (on/off), a number, else the text."""
    typed = text.strip()
    words = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
    if typed.casefold() in words:
        return struct_pb2.Value(bool_value=words[typed.casefold()])
    with contextlib.suppress(ValueError):
        return struct_pb2.Value(number_value=float(typed))
    return struct_pb2.Value(string_value=typed)


def shown(value: struct_pb2.Value) -> str:
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return "on" if value.bool_value else "off"
    if kind == "number_value":
        number = value.number_value
        return str(int(number)) if number == int(number) else str(number)
    return value.string_value


def render_settings(settings: list[gw.ResolvedSetting], personality: str) -> str:
    toward = f" toward {personality}" if personality else ""  # within the bold heading
    lines = [f"**Your settings here{toward}**"]
    for s in settings:
        lines.append(
            f"`{s.key}` = **{shown(s.value)}** ({SOURCES.get(s.source, 'unknown')})"
            + (f" — {s.help}" if s.help else "")
        )
    return "\n".join(lines)


def render_setting(s: gw.ResolvedSetting, verb: str) -> str:
    return f"{verb} `{s.key}`: now **{shown(s.value)}** ({SOURCES.get(s.source, 'unknown')})."


def _may_manage_channels(interaction: discord.Interaction) -> bool:
    return bool(interaction.permissions.manage_channels)


class SettingsCommands(app_commands.Group):
    def __init__(self, gateway: GatewayClient) -> None:
        super().__init__(name="settings", description="Your settings, and your data")
        self.gateway = gateway
        self.add_command(DataCommands(gateway))

    @app_commands.command(name="view", description="Every setting as it applies to you here")
    @app_commands.describe(personality="As they apply toward this personality (optional)")
    async def view(
        self, interaction: discord.Interaction, personality: PersonalityName = ""
    ) -> None:
        location = location_of(interaction.channel, interaction.guild)
        await named_reply(
            interaction,
            self.gateway,
            personality,
            lambda: self.gateway.stub.GetSettings(
                gw.GetSettingsRequest(
                    actor=actor(interaction), personality=personality, location=location
                )
            ),
            lambda r, name: render_settings(list(r.settings), name),
        )

    @app_commands.command(name="set", description="Change a setting at one level")
    @app_commands.choices(level=[app_commands.Choice(name=v, value=v) for v in LEVELS])
    @app_commands.describe(
        key="The setting's name, e.g. max_history_messages",
        value="on/off (true/false, yes/no), a number, or text; the allowed values autocomplete",
        level=LEVEL_HELP,
        personality=PERSONALITY_HELP,
    )
    async def set_setting(
        self,
        interaction: discord.Interaction,
        key: str,
        value: str,
        level: str = "me",
        personality: PersonalityName = "",
    ) -> None:
        if level == "channel" and in_dm(interaction):
            await send(interaction, NO_CHANNEL_IN_DM)
            return
        request = gw.SetSettingRequest(
            actor=actor(interaction),
            scope=scope_of(level, personality),
            personality=personality,
            location=location_of(interaction.channel, interaction.guild),
            key=key,
            value=value_of(value),
            manage_channels=_may_manage_channels(interaction),
        )
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.SetSetting(request),
            lambda r: render_setting(r.setting, f"Set at level {level}:"),
        )

    @app_commands.command(name="reset", description="Remove a setting at one level")
    @app_commands.choices(level=[app_commands.Choice(name=v, value=v) for v in LEVELS])
    @app_commands.describe(
        key="The setting's name, e.g. max_history_messages",
        level=LEVEL_HELP,
        personality=PERSONALITY_HELP,
    )
    async def reset_setting(
        self,
        interaction: discord.Interaction,
        key: str,
        level: str = "me",
        personality: PersonalityName = "",
    ) -> None:
        if level == "channel" and in_dm(interaction):
            await send(interaction, NO_CHANNEL_IN_DM)
            return
        request = gw.ResetSettingRequest(
            actor=actor(interaction),
            scope=scope_of(level, personality),
            personality=personality,
            location=location_of(interaction.channel, interaction.guild),
            key=key,
            manage_channels=_may_manage_channels(interaction),
        )
        await reply(
            interaction,
            self.gateway,
            lambda: self.gateway.stub.ResetSetting(request),
            lambda r: render_setting(r.setting, f"Reset at level {level}:"),
        )

    async def _known(self, interaction: discord.Interaction) -> list[gw.ResolvedSetting]:
        try:
            listed = await self.gateway.call(
                self.gateway.stub.GetSettings(gw.GetSettingsRequest(actor=actor(interaction)))
            )
        except TzurotError:
            return []
        return list(listed.settings)

    @set_setting.autocomplete("key")
    @reset_setting.autocomplete("key")
    async def _keys(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        known = await self._known(interaction)
        typed = current.casefold()
        return [
            app_commands.Choice(name=choice_name(f"{s.key} — {s.help}"), value=s.key)
            for s in known
            if choosable(s.key) and typed in s.key.casefold()
        ][:25]

    @set_setting.autocomplete("value")
    async def _values(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        key = str(getattr(interaction.namespace, "key", "") or "")
        spec = next((s for s in await self._known(interaction) if s.key == key), None)
        if spec is None:
            return []
        if spec.choices:
            return choices(list(spec.choices), current)
        hint = current or shown(spec.value)
        # Blank, it names no value (Discord would take it); cut, it would be another value.
        # Either way nothing is offered, and what was typed is sent.
        if not hint.strip() or not choosable(hint):
            return []
        return [app_commands.Choice(name=choice_name(f"{hint} ({spec.allowed})"), value=hint)]

    @view.autocomplete("personality")
    @set_setting.autocomplete("personality")
    @reset_setting.autocomplete("personality")
    async def _personalities(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await personality_choices(self.gateway, interaction, current)
