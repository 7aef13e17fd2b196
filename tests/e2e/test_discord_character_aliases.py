"""`/character alias add|remove` through the fake Discord and the whole mesh: a personality's
global aliases, changed by its owner after creation, decide who an `@alias` reaches; one that
would take another personality's @mentions is refused."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, running_bot, settled
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def character(world: World, user: dict[str, Any], *sub: str, **options: object) -> str:
    done = await world.discord.slash(world.general, user, "character", options, subcommand=sub)
    return await answered(world, done)


async def job_started(world: World, key: str) -> bool:
    try:
        await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))
    except grpc.aio.AioRpcError as exc:
        if exc.code() is not grpc.StatusCode.NOT_FOUND:
            raise
        return False
    return True


async def test_an_alias_added_reaches_the_personality_and_a_removed_one_does_not(
    world: World,
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        created = await character(
            world,
            world.alice,
            "create",
            name="Quill",
            system_prompt="You are Quill, a scribe.",
            public=True,
        )
        assert "Created **Quill**" in created
        added = await character(
            world, world.alice, "alias", "add", personality="quill", alias="@The Scribe"
        )
        said = await world.discord.say(world.general, world.alice, "@the scribe hello")
        await world.delivered(f"{said.id}:quill")
        answer = world.discord.webhook_messages(world.general)[-1]

        offered = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"personality": "quill", "alias": "scr"},
            subcommand=["alias", "remove"],
            focused="alias",
        )
        await world.discord.wait_until(offered.choices)
        bobs_add = await character(
            world, world.bob, "alias", "add", personality="quill", alias="bob's quill"
        )
        bobs_remove = await character(
            world, world.bob, "alias", "remove", personality="quill", alias="the scribe"
        )
        not_its = await character(
            world, world.alice, "alias", "remove", personality="quill", alias="lil"
        )
        removed = await character(
            world, world.alice, "alias", "remove", personality="quill", alias="THE SCRIBE"
        )
        again = await character(
            world, world.alice, "alias", "remove", personality="quill", alias="the scribe"
        )
        before = len(world.discord.webhook_messages(world.general))
        unheard = await world.discord.say(world.general, world.alice, "@the scribe hello?")
        await settled(world, bot)
        after = len(world.discord.webhook_messages(world.general))
        unheard_started = await job_started(world, f"{unheard.id}:quill")
    assert "`@The Scribe` now means **Quill** for everyone" in added
    assert answer.author_name == "Quill"
    assert [c["value"] for c in offered.choices()] == ["The Scribe"]
    assert "only the owner of 'quill' or a superuser may change it" in bobs_add
    assert "only the owner of 'quill' or a superuser may change it" in bobs_remove
    assert "`@lil` is not an alias of **Quill** (its aliases: `@The Scribe`)" in not_its
    assert "`@The Scribe` no longer means **Quill**" in removed
    assert "`@the scribe` is not an alias of **Quill** (its aliases: none)" in again
    assert (after, unheard_started) == (before, False)


async def test_an_alias_taken_or_a_name_or_empty_is_refused(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        created = await character(
            world, world.alice, "create", name="Ink", system_prompt="You are Ink.", public=True
        )
        assert "Created **Ink**" in created
        taken = await character(world, world.alice, "alias", "add", personality="ink", alias="LIL")
        a_name = await character(
            world, world.alice, "alias", "add", personality="ink", alias="@Lilith"
        )
        empty = await character(world, world.alice, "alias", "add", personality="ink", alias="@ ")
        nobody = await character(
            world, world.alice, "alias", "add", personality="nobody-here", alias="x"
        )
        # The other way round: a new personality may not be named as another's alias.
        named_as_alias = await character(
            world, world.alice, "create", name="LIL", system_prompt="You are Lil.", public=True
        )
        # An alias extending another's name, or ending in punctuation, would take its
        # @mentions ("@Lilith please, hi"): refused (review s4 M1).
        extends = await character(
            world, world.alice, "alias", "add", personality="ink", alias="Lilith please"
        )
        punctuated = await character(
            world, world.alice, "alias", "add", personality="ink", alias="lilith!"
        )
        # Nor may a name: names go before aliases, then the longest (review s5 H1).
        extends_name = await character(
            world, world.alice, "create", name="Lilith Please", system_prompt="x", public=True
        )
        said = await world.discord.say(world.general, world.alice, "@Lilith please, hi")
        await world.delivered(f"{said.id}:lilith")
        by_alias = await world.discord.say(world.general, world.alice, "@lil hi")
        await world.delivered(f"{by_alias.id}:lilith")
    assert "alias 'lil' already belongs to personality 'lilith'" in taken
    assert "@lil is already an alias of Lilith" in named_as_alias
    assert "@Lilith is the name of Lilith; an alias cannot take a personality's own name" in a_name
    assert "@Lilith please begins with @lilith, the name of Lilith" in extends
    assert "must begin and end with a letter or digit" in punctuated
    assert "@lilith is the name of Lilith, so a personality cannot take a name" in extends_name
    assert "the alias is empty" in empty
    assert "no personality named 'nobody-here'" in nobody


async def test_a_name_with_emoji_or_punctuation_at_its_edges_is_mentioned_by_its_key(
    world: World,
) -> None:
    """Display names may begin and end with anything (review s5 M2): "✨Sparrow✨" is created
    and mentioned as "@Sparrow", "Dr. Quack?" as "@Dr. Quack"."""
    await world.set_key(world.alice)
    async with running_bot(world):
        sparrow = await character(
            world, world.alice, "create", name="✨Sparrow✨", system_prompt="x", public=True
        )
        quack = await character(
            world, world.alice, "create", name="Dr. Quack?", system_prompt="x", public=True
        )
        said = await world.discord.say(world.general, world.alice, "@Sparrow hi")
        await world.delivered(f"{said.id}:sparrow")
        asked = await world.discord.say(world.general, world.alice, "@dr. quack? are you there")
        await world.delivered(f"{asked.id}:dr-quack")
    assert "Created **✨Sparrow✨**" in sparrow
    assert "Created **Dr. Quack?**" in quack
