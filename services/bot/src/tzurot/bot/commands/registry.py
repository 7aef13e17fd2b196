"""Every slash command and context menu, added to the tree in one place."""

from __future__ import annotations

from discord import app_commands

from tzurot.bot.commands.account import (
    HistoryCommands,
    PersonaCommands,
    TimezoneCommands,
    usage_command,
)
from tzurot.bot.commands.admin import AdminCommands
from tzurot.bot.commands.aliases import AliasCommands
from tzurot.bot.commands.channel import ChannelCommands
from tzurot.bot.commands.character import CharacterCommands
from tzurot.bot.commands.freewill import FreeWillCommands
from tzurot.bot.commands.lorebooks import LorebookCommands
from tzurot.bot.commands.memory import MemoryCommands
from tzurot.bot.commands.misc import help_command, inspect_menu
from tzurot.bot.commands.models import LlmConfigCommands, ModelCommands
from tzurot.bot.commands.notifications import NotificationCommands, changelog_command
from tzurot.bot.commands.personality import PersonalityCommands
from tzurot.bot.commands.settings import SettingsCommands
from tzurot.bot.commands.skills import SkillCommands
from tzurot.bot.commands.voice import VoiceCommands, speak_menu
from tzurot.bot.commands.wallet import WalletCommands
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.messages import MessageFlow


def add_commands(tree: app_commands.CommandTree, gateway: GatewayClient, flow: MessageFlow) -> None:
    for group in (
        WalletCommands(gateway),
        LlmConfigCommands(gateway),
        ModelCommands(gateway),
        TimezoneCommands(gateway),
        ChannelCommands(gateway, flow.activated),
        CharacterCommands(gateway),
        AliasCommands(gateway),
        PersonaCommands(gateway),
        HistoryCommands(gateway),
        SettingsCommands(gateway),
        MemoryCommands(gateway),
        FreeWillCommands(gateway),
        NotificationCommands(gateway),
        LorebookCommands(gateway),
        AdminCommands(gateway),
        SkillCommands(gateway),
        VoiceCommands(gateway),
        PersonalityCommands(gateway),
    ):
        tree.add_command(group)
    tree.add_command(usage_command(gateway))
    tree.add_command(changelog_command(gateway))
    tree.add_command(help_command())
    tree.add_command(inspect_menu(gateway, flow))
    tree.add_command(speak_menu(gateway, flow))
