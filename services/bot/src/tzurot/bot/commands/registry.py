"""Every slash command and context menu, added to the tree in one place."""

from __future__ import annotations

from discord import app_commands

from tzurot.bot.commands.wallet import WalletCommands
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.messages import MessageFlow


def add_commands(tree: app_commands.CommandTree, gateway: GatewayClient, flow: MessageFlow) -> None:
    tree.add_command(WalletCommands(gateway))
