"""What a command that removes or overwrites something for good acts on: exactly the
personality the user chose, never whatever a typed name happens to mean.

The gateway reads a name by its rules (the exact slug, then the user's own alias, then a
display name, then a global alias), so "Sage" may mean another personality than the one the
user has in mind. Such a command (`/personality delete`, `/character alias remove`,
`/history clear`, `/history undo`, `/memory prune`, `/memory delete`,
`/personality voice remove|set|clone`, `/personality voice-sample remove`, `/character edit`,
`/character avatar`) acts only on a personality named by its slug, which is what picking it
from the command's autocomplete sends; any other name is answered with the personality it
means (its display name and slug) and the command to run with that slug, and nothing is done.

The slug means its own personality only while the user may use it: made private in between,
the same text may then mean their alias or another's name. So the act that follows the check
names the personality by its id (`exact`), which the gateway resolves to that personality
alone or refuses as not found (`find_personality_for`); the user is then told so (`gone_text`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

from tzurot.bot.commands.common import actor, defer, failure_text, send
from tzurot.bot.gateway_client import GatewayClient
from tzurot.runtime.errors import TzurotError
from tzurot.runtime.graphemes import clipped
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

T = TypeVar("T")


def named(p: common.Personality) -> str:
    """**Display name** (`slug`): how a reply names the personality it acted on."""
    return f"**{p.display_name or p.slug}** (`{p.slug}`)"


def exact(p: common.Personality) -> str:
    """What the act after the check sends as the personality: its id, which means `p` alone
    (or nothing, once the user may not use it), never another personality."""
    return p.id or p.slug


def gone_text(nothing: str, p: common.Personality) -> str:
    """Why nothing was done: `p` was found, but not when acting on it (deleted, or made
    private by its owner, in between)."""
    return f"{nothing}: {named(p)} is no longer there for you (deleted or made private just now)."


def is_slug(typed: str, p: common.Personality) -> bool:
    """Whether `typed` is exactly `p`'s slug (spaces around it and a leading '@' aside): the
    one name no alias and no other personality's name can take from it."""
    return bool(p.slug) and typed.strip().removeprefix("@").strip() == p.slug


def with_slug(command: str, p: common.Personality, more: str = "") -> str:
    """How to run `command` on exactly `p`: "`/history clear` with `personality: sage`"."""
    return f"`{command}` with `personality: {p.slug}`{more}"


def in_code(text: str) -> str:
    """`text` fit for an inline code span: on one line, no backtick, 100 characters at most
    (cut between two characters as a reader sees them, with an ellipsis where cut)."""
    return clipped(" ".join(text.split()).replace("`", "'"), 100)


def code_span(text: str) -> str:
    """`text` as inline code that can be copied as is: a text with a backtick (an alias may
    hold one inside) goes in a double-backtick span, which Discord shows whole; a text with
    a double backtick in it cannot, so its backticks become quotes."""
    if "`" not in text:
        return f"`{text}`"
    if "``" in text:
        return "`" + text.replace("`", "'") + "`"
    return f"`` {text} ``"


CANNOT_UNDO = "This cannot be undone"
"""`unsure_text`'s reason for a removal (or a clone): what it takes is gone for good."""
REPLACES = "This replaces what is there now"
"""`unsure_text`'s reason for an overwrite (an avatar, a voice, a field): it can be set
again, but what it replaces is gone."""


def unsure_text(nothing: str, typed: str, p: common.Personality, again: str, why: str) -> str:
    """Why nothing was done: `typed` means `p`, but not by its slug. `nothing` says what was
    not done ("Nothing deleted"), `again` how to do it to `p` (`with_slug`), `why` why it
    is done only by slug (`CANNOT_UNDO`, `REPLACES`)."""
    shown = in_code(typed)
    return (
        f"{nothing}: `{shown}` means {named(p)} for you. {why}, so it is done "
        "only to a personality named by its slug (picking it from the list gives it). If "
        f"{named(p)} is the one, run {again}."
    )


async def chosen_personality(
    gateway: GatewayClient,
    interaction: discord.Interaction,
    typed: str,
    *,
    nothing: str,
    why: str,
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
        await send(interaction, unsure_text(nothing, typed, target, again(target), why))
        return None
    return target


async def act_on_chosen(
    interaction: discord.Interaction,
    gateway: GatewayClient,
    typed: str,
    *,
    nothing: str,
    why: str,
    again: Callable[[common.Personality], str],
    rpc: Callable[[common.Personality], Awaitable[T]],
    render: Callable[[T, common.Personality], str],
) -> None:
    """`common.reply` for a command that removes or overwrites something for good:
    `rpc(target)` only on the personality `typed` names by its slug (`chosen_personality`),
    which names it by `exact(target)`; its answer rendered with that personality. `why` says
    why a name that is not the slug is refused (`unsure_text`)."""
    target = await chosen_personality(
        gateway, interaction, typed, nothing=nothing, why=why, again=again
    )
    if target is None:
        return
    try:
        text = render(await gateway.call(rpc(target)), target)
    except TzurotError as err:
        text = gone_text(nothing, target) if is_gone(err) else failure_text(err)
    await send(interaction, text)


def is_gone(err: TzurotError) -> bool:
    """The gateway no longer finds the personality the check found (`gone_text`)."""
    return err.reason == "PERSONALITY_NOT_FOUND"
