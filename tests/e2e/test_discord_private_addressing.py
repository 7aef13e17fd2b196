"""Whom a message addresses depends on who sends it, whoever the bot asked about before: the
personalities a user may use (the public ones and their own private ones) are listed for that
user, not shared between users. Through the fake Discord and the whole mesh: a reply to an
answer the bot no longer remembers reaches the author's own private personality even when
another shares its name, and a private personality's `@name` reaches its owner and no one
else."""

from __future__ import annotations

from typing import Any

import pytest

from tzurot.testing.discord_e2e import (
    World,
    member_actor,
    running_bot,
    settled,
)
from tzurot.testing.fake_discord import Json, Posted
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def create(world: World, owner: Json, name: str, *, slug: str = "", public: bool) -> None:
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(owner),
            personality=common.Personality(
                slug=slug, display_name=name, system_prompt=f"You are {name}.", public=public
            ),
        )
    )


async def answered(world: World, user: Json, text: str, key: str, **options: Any) -> Posted:
    """`user` says `text` in #general; the answer it gets as `<message id>:<key>`."""
    said = await world.discord.say(world.general, user, text, **options)
    await world.delivered(f"{said.id}:{key}", within=10)
    return world.discord.webhook_messages(world.general)[-1]


async def test_a_reply_reaches_her_private_personality_sharing_a_name_after_a_restart(
    world: World,
) -> None:
    """Her private "Moth" (`alices-moth`) and Bob's public "Moth" (`moth`) post under the same
    name. Once the bot has restarted it finds whom an answer was posted as through its job, and
    names it from the replier's own list: Bob's reply (asked first, so his list is the one
    cached) reaches his Moth, then hers reaches hers, not nobody."""
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    await create(world, world.bob, "Moth", public=True)
    await create(world, world.alice, "Moth", slug="alices-moth", public=False)
    async with running_bot(world):
        hers = await answered(world, world.alice, "@alices-moth hello", "alices-moth")
        his = await answered(world, world.bob, "@moth hello", "moth")
    async with running_bot(world):
        await answered(world, world.bob, "and then?", "moth", reply_to=his)
        await answered(world, world.alice, "and then?", "alices-moth", reply_to=hers)

    assert [a.author_name for a in world.discord.webhook_messages(world.general)] == ["Moth"] * 4


async def test_a_private_name_reaches_its_owner_and_no_one_else(world: World) -> None:
    """Whoever asked first: her `@Sora` reaches her private Sora; his `@Sora` is a mention of
    nothing (the channel's activated Lilith answers him, as for a name nobody has) and tells
    him nothing of Sora."""
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    await create(world, world.alice, "Sora", public=False)
    async with running_bot(world):
        await answered(world, world.alice, "@Sora hello", "sora")  # she asks first
        await world.cli.ActivateChannel(
            gw.ActivateChannelRequest(
                actor=member_actor(world.alice),
                location=common.Location(
                    guild_id=world.guild["id"], channel_id=world.general["id"]
                ),
                personality="lilith",
                manage_channels=True,
            )
        )
        await answered(world, world.bob, "@Sora hi", "lilith")
    async with running_bot(world) as bot:
        await answered(world, world.bob, "@Sora hi again", "lilith")  # he asks first
        await answered(world, world.alice, "@Sora hello again", "sora")
        await settled(world, bot)

    answers = world.discord.webhook_messages(world.general)
    assert [a.author_name for a in answers] == ["Sora", "Lilith", "Lilith", "Sora"]
