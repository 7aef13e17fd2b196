"""`/character alias remove` removes the alias from the personality it checked, and from no
other: its RemoveAlias names that personality by its id (review: it named the alias alone, so
an alias moved to another personality between the check and the act was removed from that
other one). Through the fake Discord, the real bot and the whole mesh; a hop between the bot
and the gateway moves the alias (or deletes the personality) right after the bot's check."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from tzurot.testing.discord_e2e import (
    RecordingGateway,
    World,
    member_actor,
    recording_gateway,
    running_bot,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .test_discord_destructive_by_slug import slash

pytestmark = pytest.mark.e2e


class RacingGateway(RecordingGateway):
    """Runs `race()` once, right after the bot's next GetPersonality (the check), and keeps
    the RemoveAlias requests it passes on (their refusals passed on whole, reason and all)."""

    race: Callable[[], Awaitable[None]] | None = None

    def __init__(self, upstream: Any) -> None:
        super().__init__(upstream)
        self.removals: list[gw.RemoveAliasRequest] = []

    async def GetPersonality(self, request: gw.GetPersonalityRequest, context: Any) -> Any:
        found = await self.upstream.GetPersonality(request)
        race, self.race = self.race, None
        if race is not None:
            await race()
        return found

    async def RemoveAlias(self, request: gw.RemoveAliasRequest, context: Any) -> Any:
        self.removals.append(request)
        try:
            return await self.upstream.RemoveAlias(request)
        except grpc.aio.AioRpcError as exc:
            await context.abort(
                exc.code(), exc.details() or "", tuple(exc.trailing_metadata() or ())
            )


async def two_of_alices(world: World, tag: str) -> tuple[common.Personality, common.Personality]:
    """Alice's "Quill <tag>" (with the alias "scribe <tag>") and "Ink <tag>" (the mesh, and
    its names, are the module's)."""
    made = []
    for name in ("Quill", "Ink"):
        created = await world.cli.CreatePersonality(
            gw.CreatePersonalityRequest(
                actor=member_actor(world.alice),
                personality=common.Personality(
                    slug=f"{name.lower()}-{tag}",
                    display_name=f"{name} {tag}",
                    system_prompt=f"You are {name}.",
                    public=True,
                ),
            )
        )
        made.append(created.personality)
    quill, ink = made
    await world.cli.AddAlias(
        gw.AddAliasRequest(
            actor=member_actor(world.alice), personality=quill.slug, alias=f"scribe {tag}"
        )
    )
    return quill, ink


async def aliases_of(world: World, slug: str) -> list[str]:
    found = await world.cli.GetPersonality(
        gw.GetPersonalityRequest(actor=member_actor(world.alice), personality=slug)
    )
    return list(found.personality.aliases)


async def test_an_alias_moved_after_the_check_stays_with_the_one_it_moved_to(
    world: World,
) -> None:
    tag = uuid.uuid4().hex[:6]
    quill, ink = await two_of_alices(world, tag)
    scribe = f"scribe {tag}"

    async def moved() -> None:  # Alice, elsewhere, gives the alias to Ink instead
        alice = member_actor(world.alice)
        await world.cli.RemoveAlias(gw.RemoveAliasRequest(actor=alice, alias=scribe))
        await world.cli.AddAlias(
            gw.AddAliasRequest(actor=alice, personality=ink.slug, alias=scribe)
        )

    async with (
        recording_gateway(world, RacingGateway) as (hop, client),
        running_bot(world, gateway=client),
    ):
        assert isinstance(hop, RacingGateway)
        hop.race = moved
        refused = await slash(
            world, world.alice, "character", "alias", "remove",
            personality=quill.slug, alias=scribe,
        )  # fmt: skip
        (removal,) = hop.removals
        kept = await aliases_of(world, ink.slug)
        removed = await slash(
            world, world.alice, "character", "alias", "remove",
            personality=ink.slug, alias=scribe,
        )  # fmt: skip
        left = await aliases_of(world, ink.slug)
    assert (removal.alias, removal.personality) == (scribe, quill.id)  # the one checked
    assert refused == f"'{scribe}' is not an alias of Quill {tag}; nothing removed"
    assert kept == [scribe]
    assert removed == f"`@{scribe}` no longer means **Ink {tag}**."
    assert left == []


async def test_a_personality_deleted_after_the_check_loses_nothing_else(world: World) -> None:
    """Quill goes, and with it its alias, which Ink takes up at once: the removal meant for
    Quill leaves Ink's aliases, that one and its own, as they were."""
    tag = uuid.uuid4().hex[:6]
    quill, ink = await two_of_alices(world, tag)
    alice, scribe, pen = member_actor(world.alice), f"scribe {tag}", f"pen {tag}"
    await world.cli.AddAlias(gw.AddAliasRequest(actor=alice, personality=ink.slug, alias=pen))

    async def deleted() -> None:
        await world.cli.DeletePersonality(
            gw.DeletePersonalityRequest(actor=alice, personality=quill.slug)
        )
        await world.cli.AddAlias(
            gw.AddAliasRequest(actor=alice, personality=ink.slug, alias=scribe)
        )

    async with (
        recording_gateway(world, RacingGateway) as (hop, client),
        running_bot(world, gateway=client),
    ):
        assert isinstance(hop, RacingGateway)
        hop.race = deleted
        refused = await slash(
            world, world.alice, "character", "alias", "remove",
            personality=quill.slug, alias=scribe,
        )  # fmt: skip
        (removal,) = hop.removals
        kept = await aliases_of(world, ink.slug)
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await world.cli.GetPersonality(gw.GetPersonalityRequest(actor=alice, personality=quill.id))
    assert sorted(kept) == sorted([pen, scribe])  # Ink lost neither
    assert (removal.alias, removal.personality) == (scribe, quill.id)
    assert refused == (
        f"Nothing removed: **Quill {tag}** (`{quill.slug}`) is no longer there for you "
        "(deleted or made private just now)."
    )
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND
