"""The denylist from Discord to its effect: a mute is silent (no reply, not even typing), a
block says so once per cooldown, and superusers manage entries with /admin deny."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from tzurot.bot.bot import TzurotBot
from tzurot.bot.commands.common import NOT_YET
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


def _refusals() -> float:
    return (
        REGISTRY.get_sample_value(
            "grpc_server_handled_total",
            {
                "grpc_service": "tzurot.v1.GatewayService",
                "grpc_method": "Generate",
                "grpc_code": "PERMISSION_DENIED",
            },
        )
        or 0.0
    )


async def refused_and_handled(world: World, bot: TzurotBot, before: float, count: int) -> None:
    """Waits until the gateway refused `count` more messages and the bot is done with them."""
    await world.discord.wait_until(lambda: _refusals() >= before + count)
    assert bot.flow is not None
    await bot.flow.idle(30)


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def deny(world: World, who: dict[str, str], mode: gw.DenyMode.ValueType) -> None:
    await world.cli.AddDenylistEntry(
        gw.AddDenylistEntryRequest(
            entry=gw.DenylistEntry(
                target=gw.DENY_TARGET_USER,
                target_id=who["id"],
                scope=gw.DENY_SCOPE_CHANNEL,
                scope_id=world.general["id"],
                mode=mode,
            )
        )
    )


async def test_a_muted_user_gets_no_reply_at_all(world: World) -> None:
    await world.set_key(world.bob)
    await deny(world, world.bob, gw.DENY_MODE_MUTE)
    async with running_bot(world) as bot:
        before = _refusals()
        await world.discord.say(world.general, world.bob, "@Lilith hello?")
        await refused_and_handled(world, bot, before, 1)
    assert world.discord.webhook_messages(world.general) == []
    posted = world.discord.messages.get(int(world.general["id"]), [])
    assert [m.content for m in posted] == ["@Lilith hello?"]  # Bob's own, nothing else
    assert int(world.general["id"]) not in world.discord.typing


async def test_a_blocked_user_is_told_once_per_cooldown(world: World) -> None:
    await world.set_key(world.bob)
    await deny(world, world.bob, gw.DENY_MODE_BLOCK)
    async with running_bot(world) as bot:
        before = _refusals()
        await world.discord.say(world.general, world.bob, "@Lilith hello?")
        await refused_and_handled(world, bot, before, 1)
        await world.discord.say(world.general, world.bob, "@Lilith hello again?")
        await refused_and_handled(world, bot, before, 2)
    (told,) = world.discord.webhook_messages(world.general)
    assert "you may not use this bot here" in told.content


async def test_superusers_manage_the_denylist_from_discord(world: World) -> None:
    await world.set_key(world.bob)
    await world.cli.GetUser(gw.GetUserRequest(actor=common.Actor(user_id=world.alice["id"])))
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.begin() as conn:  # as an operator would: README, "Superusers"
            await conn.execute(
                sa.text("UPDATE core.users SET superuser = true WHERE platform_user_id = :id"),
                {"id": world.alice["id"]},
            )
    finally:
        await engine.dispose()
    async with running_bot(world) as bot:
        refused = await world.discord.slash(
            world.general, world.bob, "admin", subcommand=["deny", "list"]
        )
        assert "only superusers manage the denylist" in await answered(world, refused)
        added = await world.discord.slash(
            world.general,
            world.alice,
            "admin",
            {"user": world.bob, "mode": "mute", "scope": "channel", "reason": "spam"},
            subcommand=["deny", "add"],
        )
        text = await answered(world, added)
        assert f"mute user `{world.bob['id']}` in channel `{world.general['id']}` — spam" in text
        entry_id = text.split("`")[1]
        listed = await world.discord.slash(
            world.general, world.alice, "admin", subcommand=["deny", "list"]
        )
        assert entry_id in await answered(world, listed)
        before = _refusals()
        await world.discord.say(world.general, world.bob, "@Lilith muted?")
        await refused_and_handled(world, bot, before, 1)
        assert world.discord.webhook_messages(world.general) == []
        removed = await world.discord.slash(
            world.general,
            world.alice,
            "admin",
            {"entry_id": entry_id},
            subcommand=["deny", "remove"],
        )
        assert f"Removed entry `{entry_id}`" in await answered(world, removed)
        said = await world.discord.say(world.general, world.bob, "@Lilith and now?")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    assert answer.author_name == "Lilith"
