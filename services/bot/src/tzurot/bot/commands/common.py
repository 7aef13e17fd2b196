"""What every command shares: the actor, ephemeral replies, gateway errors as plain words."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord
import grpc

from tzurot.bot.gateway_client import GatewayClient, actor_of
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common

T = TypeVar("T")

NOT_YET = "This is not available on this Tzurot yet (the gateway does not offer it)."
PROVIDERS = ("openrouter", "openai", "anthropic", "gemini", "ollama")


def actor(interaction: discord.Interaction) -> common.Actor:
    return actor_of(interaction.user)


def failure_text(err: TzurotError) -> str:
    if err.code is grpc.StatusCode.UNIMPLEMENTED:
        return NOT_YET
    if err.code in {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }:
        return err.message
    return "Something went wrong on our side; try again later."


async def reply(
    interaction: discord.Interaction,
    gateway: GatewayClient,
    rpc: Callable[[], Awaitable[T]],
    render: Callable[[T], str],
    *,
    ephemeral: bool = True,
) -> None:
    """Calls the gateway, then answers with `render(result)` or the failure, once."""
    try:
        result = await gateway.call(rpc())
        text = render(result)
    except TzurotError as err:
        text = failure_text(err)
    await send(interaction, text, ephemeral=ephemeral)


async def send(interaction: discord.Interaction, text: str, *, ephemeral: bool = True) -> None:
    text = text[:2000]
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral)
    else:
        await interaction.response.send_message(text, ephemeral=ephemeral)


def choices(values: list[str], current: str) -> list[discord.app_commands.Choice[str]]:
    """Autocomplete: the values containing what was typed, at most 25 (Discord's limit)."""
    typed = current.casefold()
    return [
        discord.app_commands.Choice(name=v[:100], value=v[:100])
        for v in values
        if typed in v.casefold()
    ][:25]
