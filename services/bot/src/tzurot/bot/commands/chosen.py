"""What a command that removes something for good acts on: exactly the personality the user
chose, never whatever a typed name happens to mean.

The gateway reads a name by its rules (the exact slug, then the user's own alias, then a
display name, then a global alias), so "Sage" may mean another personality than the one the
user has in mind. Such a command (`/personality delete`, `/character alias remove`,
`/history clear`, `/history undo`, `/memory prune`, `/personality voice remove`) acts only on
a personality named by its slug, which is what picking it from the command's autocomplete
sends; any other name is answered with the personality it means (its display name and slug)
and the command to run with that slug, and nothing is done. The gateway is then sent that
slug, which there always means its own personality (`find_personality_for`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

from tzurot.bot.commands.common import actor, defer, failure_text, send
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

T = TypeVar("T")


def named(p: common.Personality) -> str:
    """**Display name** (`slug`): how a reply names the personality it acted on."""
    return f"**{p.display_name or p.slug}** (`{p.slug}`)"


def is_slug(typed: str, p: common.Personality) -> bool:
    """Whether `typed` is exactly `p`'s slug (spaces around it and a leading '@' aside): the
    one name no alias and no other personality's name can take from it."""
    return bool(p.slug) and typed.strip().removeprefix("@").strip() == p.slug


def with_slug(command: str, p: common.Personality, more: str = "") -> str:
    """How to run `command` on exactly `p`: "`/history clear` with `personality: sage`"."""
    return f"`{command}` with `personality: {p.slug}`{more}"


def unsure_text(nothing: str, typed: str, p: common.Personality, again: str) -> str:
    """Why nothing was done: `typed` means `p`, but not by its slug. `nothing` says what was
    not done ("Nothing deleted"), `again` how to do it to `p` (`with_slug`)."""
    shown = " ".join(typed.split()).replace("`", "'")[:100]
    return (
        f"{nothing}: `{shown}` means {named(p)} for you. This cannot be undone, so it is done "
        "only to a personality named by its slug (picking it from the list gives it). If "
        f"{named(p)} is the one, run {again}."
    )


async def chosen_personality(
    gateway: GatewayClient,
    interaction: discord.Interaction,
    typed: str,
    *,
    nothing: str,
    again: Callable[[common.Personality], str],
    failed: Callable[[TzurotError], str] = failure_text,
) -> common.Personality | None:
    """The personality `typed` names, when it names it by its slug. Otherwise None, the user
    told why: it is not found (or the gateway refused, in `failed`'s words), or which
    personality it means and how to name it (`unsure_text`). Defers the interaction first."""
    await defer(interaction)
    try:
        found = await gateway.call(
            gateway.stub.GetPersonality(
                gw.GetPersonalityRequest(actor=actor(interaction), personality=typed)
            )
        )
    except TzurotError as err:
        await send(interaction, failed(err))
        return None
    target = found.personality
    if not is_slug(typed, target):
        await send(interaction, unsure_text(nothing, typed, target, again(target)))
        return None
    return target


async def act_on_chosen(
    interaction: discord.Interaction,
    gateway: GatewayClient,
    typed: str,
    *,
    nothing: str,
    again: Callable[[common.Personality], str],
    rpc: Callable[[common.Personality], Awaitable[T]],
    render: Callable[[T, common.Personality], str],
) -> None:
    """`common.reply` for a command that removes something for good: `rpc(target)` only on
    the personality `typed` names by its slug (`chosen_personality`), its answer rendered
    with that personality."""
    target = await chosen_personality(gateway, interaction, typed, nothing=nothing, again=again)
    if target is None:
        return
    try:
        text = render(await gateway.call(rpc(target)), target)
    except TzurotError as err:
        text = failure_text(err)
    await send(interaction, text)
