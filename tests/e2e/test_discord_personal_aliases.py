"""`/alias add|remove|list` through the fake Discord and the whole mesh: a user's own alias
wins over a global one for that user only, and every clash is explained."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from tzurot.bot.commands.common import NOT_YET
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def alias(world: World, user: dict[str, Any], sub: str, **options: str) -> str:
    done = await world.discord.slash(world.general, user, "alias", options, subcommand=[sub])
    return await answered(world, done)


async def who_answers(world: World, user: dict[str, Any], text: str) -> str:
    """The one personality that answered `text` (the jobs the bot started for it)."""
    before = len(world.discord.webhook_messages(world.general))
    said = await world.discord.say(world.general, user, text)
    await world.discord.wait_until(
        lambda: len(world.discord.webhook_messages(world.general)) > before
    )
    started = []
    for slug in ("lilith", "sage"):
        key = f"{said.id}:{slug}"
        try:
            await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=key))
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.NOT_FOUND:
                raise
            continue
        await world.delivered(key)
        started.append(slug)
    assert len(started) == 1, started
    return started[0]


async def test_a_personal_alias_wins_for_its_user_only(world: World) -> None:
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    async with running_bot(world):
        added = await alias(world, world.alice, "add", personality="sage", alias="@Lil")
        is_a_name = await alias(world, world.alice, "add", personality="sage", alias="lilith")
        again = await alias(world, world.alice, "add", personality="sage", alias="lil")
        other = await alias(world, world.alice, "add", personality="lilith", alias="LIL")
        same = await alias(world, world.alice, "add", personality="lilith", alias="the night queen")
        listed = await alias(world, world.alice, "list")
        bobs = await alias(world, world.bob, "list")

        alice_says = await who_answers(world, world.alice, "@lil hello")
        bob_says = await who_answers(world, world.bob, "@lil hello")
        alice_sage = world.provider.chat_requests()[-2].body["model"]

        offered = await world.discord.slash(
            world.general,
            world.alice,
            "alias",
            {"alias": "l"},
            subcommand=["remove"],
            focused="alias",
        )
        await world.discord.wait_until(offered.choices)
        removed = await alias(world, world.alice, "remove", alias="lil")
        missing = await alias(world, world.alice, "remove", alias="lil")
        alice_after = await who_answers(world, world.alice, "@lil again")
    assert (
        added
        == "For you, `@Lil` now means **Sage**. (For everyone else it still means **Lilith**.)"
    )
    assert (
        "@lilith is the name of Lilith; an alias cannot take a personality's own name" in is_a_name
    )
    assert "you already use @lil for Sage" in again
    assert "you already use @LIL for Sage; `/alias remove` it first" in other
    assert "@the night queen already means Lilith for everyone" in same
    assert "`@Lil` → **Sage** (instead of Lilith)" in listed
    assert "You have no aliases of your own" in bobs
    assert (alice_says, bob_says, alice_sage) == ("sage", "lilith", "fake/sage")
    assert [c["value"] for c in offered.choices()] == ["Lil"]
    assert "Removed your alias `@lil`" in removed
    assert "you have no alias @lil" in missing
    assert alice_after == "lilith"


async def test_a_private_personality_hides_no_global_alias_from_others(world: World) -> None:
    """Bob's private "Lil" (slug `lil`) is his alone: for Alice, `lil` still means Lilith.

    A name may no longer be made of another's global alias (NAME_IS_AN_ALIAS), so the tie is
    made as it stands in older data: Lilith's `lil` is taken away while Bob makes Lil, then
    put back in the table as it was."""
    await world.set_key(world.alice)
    bob = common.Actor(user_id=str(world.bob["id"]), display_name="bob")
    await world.cli.RemoveAlias(gw.RemoveAliasRequest(alias="lil"))
    try:
        created = await world.cli.CreatePersonality(
            gw.CreatePersonalityRequest(
                actor=bob, personality=common.Personality(display_name="Lil")
            )
        )
    finally:
        await _give_lilith_back_lil(world)
    assert (created.personality.slug, created.personality.public) == ("lil", False)
    try:
        async with running_bot(world):
            viewed = await world.discord.slash(
                world.general, world.alice, "character", {"personality": "lil"}, subcommand=["view"]
            )
            alice_view = await answered(world, viewed)
            bobs = await world.discord.slash(
                world.general, world.bob, "character", {"personality": "lil"}, subcommand=["view"]
            )
            bob_view = await answered(world, bobs)
            alice_says = await who_answers(world, world.alice, "@lil hello")
    finally:
        await world.cli.DeletePersonality(gw.DeletePersonalityRequest(actor=bob, personality="lil"))
    assert "**Lilith** (`lilith`)" in alice_view
    assert "**Lil** (`lil`)" in bob_view
    assert alice_says == "lilith"


async def _give_lilith_back_lil(world: World) -> None:
    """Lilith's alias `lil` as a seed left it (the rules of today would refuse it now that a
    personality is named Lil), then any alias write, which clears the gateway's catalog."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO core.personality_aliases (alias, personality_id, display)"
                    " SELECT 'lil', id, 'lil' FROM core.personalities WHERE slug = 'lilith'"
                )
            )
    finally:
        await engine.dispose()
    await world.cli.AddAlias(gw.AddAliasRequest(personality="lilith", alias="lilith-e2e"))
    await world.cli.RemoveAlias(gw.RemoveAliasRequest(alias="lilith-e2e"))
