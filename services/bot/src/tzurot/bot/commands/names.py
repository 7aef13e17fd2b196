"""What a reply calls a personality: its display name ("Echo"), never the name or slug the
user happened to type ("echo"), for the replies whose gateway answer does not carry the
personality. The lookup comes after the command's own call succeeded (so a refusal is the
one told), and a lookup that fails leaves what was typed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

from tzurot.bot.commands.common import actor, reply
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError

T = TypeVar("T")


async def display_name(gateway: GatewayClient, interaction: discord.Interaction, typed: str) -> str:
    """The display name of the personality `typed` names, or `typed` when it is not found
    (or nothing was typed)."""
    if not typed.strip():
        return typed
    try:
        found = await gateway.personality(actor(interaction), typed)
    except TzurotError:
        return typed
    return found.display_name if found is not None and found.display_name else typed


async def named_reply(
    interaction: discord.Interaction,
    gateway: GatewayClient,
    typed: str,
    rpc: Callable[[], Awaitable[T]],
    render: Callable[[T, str], str],
    *,
    ephemeral: bool = True,
) -> None:
    """`common.reply`, with `render` given the personality's display name besides the result."""

    async def call() -> tuple[T, str]:
        result = await rpc()
        return result, await display_name(gateway, interaction, typed)

    await reply(interaction, gateway, call, lambda r: render(*r), ephemeral=ephemeral)
