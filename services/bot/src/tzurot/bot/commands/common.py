"""What every command shares: the actor, ephemeral replies, gateway errors as plain words."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import discord
import grpc
from discord import InteractionResponseType

from tzurot.bot.gateway_client import GatewayClient, actor_of
from tzurot.runtime.errors import TzurotError
from tzurot.runtime.graphemes import clipped
from tzurot.v1 import common_pb2 as common

T = TypeVar("T")

NOT_YET = "This is not available on this Tzurot yet (the gateway does not offer it)."
UNREACHABLE = "A service is briefly unreachable; try again in a minute."
"""UNAVAILABLE (a service restarting, inference or a provider away for a moment): the same
command, sent again shortly, is answered; nothing was wrong with what was asked."""
PROVIDERS = ("openrouter", "openai", "anthropic", "gemini", "ollama", "elevenlabs")
CONFIRM_WORD = "DELETE"
"""What a command that erases for good wants typed in its `confirm` option; anything else
deletes nothing (`/settings data delete`, `/personality delete`)."""
CHOICE_LIMIT = 100
"""Discord's limit on an autocomplete choice: a name of 1-100 characters, a string value of
at most 100 (application-commands, "Application Command Option Choice Structure"); one
over it and Discord refuses the whole answer (400 50035)."""


NO_CHANNEL_IN_DM = (
    "A DM has no channel to change for everyone: personalities answer only in a server's "
    "channels. Run this there, in the channel you mean."
)
"""The answer to a channel-level change (`level: channel`, `scope: channel`) asked in a DM with
the bot: commands are synced globally, so Discord offers them there, but no one has Manage
Channels in a DM and the bot answers in none."""


def in_dm(interaction: discord.Interaction) -> bool:
    """Whether the command was run outside any server (in a DM with the bot)."""
    return interaction.guild_id is None


def actor(interaction: discord.Interaction) -> common.Actor:
    return actor_of(interaction.user)


def confirmed(confirm: str) -> bool:
    return confirm == CONFIRM_WORD


def failure_text(err: TzurotError) -> str:
    if err.code is grpc.StatusCode.UNIMPLEMENTED:
        return NOT_YET
    if err.code is grpc.StatusCode.UNAVAILABLE:
        return UNREACHABLE
    if err.code in {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }:
        # Discord refuses an empty message (50006): a refusal without words still says one.
        return err.message.strip() or f"That was refused ({err.code.name.lower()})."
    return "Something went wrong on our side; try again later."


MAX_TEXT_WITH_WARNINGS = 1900
"""How long a reply with warnings may grow: under Discord's 2,000 characters (`send` cuts
there), with room for the line saying how many more were left out."""


def with_warnings(text: str, warnings: Sequence[str], limit: int = MAX_TEXT_WITH_WARNINGS) -> str:
    """`text`, then a "⚠️" line for each warning while the whole stays within `limit`
    characters, then "…and N more" for those left out: never a line cut short."""
    lines = [text]
    size = len(text)
    for index, warning in enumerate(warnings):
        line = f"⚠️ {warning}"
        if size + 1 + len(line) > limit:
            lines.append(f"…and {len(warnings) - index} more")
            break
        lines.append(line)
        size += 1 + len(line)
    return "\n".join(lines)


async def reply(
    interaction: discord.Interaction,
    gateway: GatewayClient,
    rpc: Callable[[], Awaitable[T]],
    render: Callable[[T], str],
    *,
    ephemeral: bool = True,
) -> None:
    """Acknowledges at once (Discord's 3 s deadline), calls the gateway, then edits the
    original response with `render(result)` or the failure."""
    await defer(interaction, ephemeral=ephemeral)
    try:
        result = await gateway.call(rpc())
        text = render(result)
    except TzurotError as err:
        text = failure_text(err)
    await send(interaction, text, ephemeral=ephemeral)


async def defer(interaction: discord.Interaction, *, ephemeral: bool = True) -> None:
    """Acknowledges the interaction (a "thinking" state), unless it already is."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)


async def send(
    interaction: discord.Interaction,
    text: str,
    *,
    ephemeral: bool = True,
    file: discord.File | None = None,
) -> None:
    """The answer: the initial response if none was sent yet, an edit of the original after a
    defer (as Discord documents), else a follow-up. Mentions never ping."""
    text = text[:2000]
    extra: dict[str, Any] = {"allowed_mentions": discord.AllowedMentions.none()}
    if not interaction.response.is_done():
        if file is not None:
            extra["file"] = file
        await interaction.response.send_message(text, ephemeral=ephemeral, **extra)
    elif interaction.response.type is InteractionResponseType.deferred_channel_message and (
        interaction.id not in _edited
    ):
        _edited.add(interaction.id)
        if file is not None:
            extra["attachments"] = [file]
        await interaction.edit_original_response(content=text, **extra)
    else:
        if file is not None:
            extra["file"] = file
        await interaction.followup.send(text, ephemeral=ephemeral, **extra)


class _Edited:
    """Interactions whose deferred original response was already edited (bounded)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, interaction_id: object) -> bool:
        return interaction_id in self._ids

    def add(self, interaction_id: int) -> None:
        self._ids[interaction_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


_edited = _Edited()


def fits(interaction: discord.Interaction, size: int) -> bool:
    """Whether a file of `size` bytes may be sent in answer to `interaction`."""
    return size <= interaction.filesize_limit


def choice_name(text: str, blank: str = "") -> str:
    """`text` as a choice's name: cut to `CHOICE_LIMIT` between two characters as a reader
    sees them, with an ellipsis where cut; `blank` instead when `text` is only whitespace
    (`named`)."""
    return clipped(text if named(text) else blank, CHOICE_LIMIT)


def named(name: str) -> bool:
    """Whether `name` can name a choice: Discord trims a name before its 1-100 check, so
    a name of only whitespace is refused as an empty one, and with it the whole answer."""
    return bool(name.strip())


def choosable(value: str) -> bool:
    """Whether `value` can be sent whole as a choice's value: a value cut to the limit would
    be another string, which the lookup it is sent to would not find."""
    return len(value) <= CHOICE_LIMIT


def choices(values: list[str], current: str) -> list[discord.app_commands.Choice[str]]:
    """Autocomplete: the values containing what was typed, at most 25 (Discord's limit), each
    its own name; one blank (`named`) or over `CHOICE_LIMIT` is left out (it may still be
    typed)."""
    typed = current.casefold()
    return [
        discord.app_commands.Choice(name=v, value=v)
        for v in values
        if named(v) and choosable(v) and typed in v.casefold()
    ][:25]
