"""Chain replies in a group channel through the fake Discord and the whole mesh: the reply of
one personality to another's answer quotes that answer (ScheduledTurn.reply_to_message_id) as
a reply quotes the message it answers; that answer deleted meanwhile, it is posted without a
quote.

As in test_discord_groups.py, the gateway runs on a ManualClock: a chain's cooldown passes
when a test advances it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from google.protobuf import struct_pb2

from tzurot.bot.references import REPLY_QUOTE_PREFIX
from tzurot.cli.localdb import create_database
from tzurot.db.engine import create_engine
from tzurot.gateway.clock import ManualClock
from tzurot.testing.discord_e2e import World, discord_world, running_bot
from tzurot.testing.fake_discord import Posted
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

NOON = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(NOON)


@pytest.fixture(scope="module")
async def group_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory, clock: ManualClock
) -> AsyncIterator[World]:
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    options: dict[str, Any] = {
        "group_seed": "e2e-chain-quote",
        "events_poll_seconds": 0.1,
        "freewill_tick_seconds": 0,  # no free will: only the chain's turns
    }
    async with discord_world(
        database, tmp_path_factory.mktemp("chain"), gateway=options, gateway_clock=clock
    ) as world:
        yield world


@pytest.fixture
async def world(group_mesh: World) -> World:
    """A fresh channel where Lilith and Sage take turns: one answers a message, the other
    replies to it once, after `cooldown` (set by each test)."""
    fresh = group_mesh.scene()
    await fresh.set_key(fresh.alice)
    for name in ("Lilith", "Sage"):
        await fresh.cli.ActivateChannel(
            gw.ActivateChannelRequest(location=_where(fresh), personality=name)
        )
        await fresh.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug=name.lower(), talkativeness=1.0),
                update_paths=["talkativeness"],
            )
        )
    await set_channel(fresh, "group_max_speakers", 1)
    await set_channel(fresh, "group_chain_cap", 1)
    return fresh


async def set_channel(world: World, key: str, value: float) -> None:
    await world.cli.SetSetting(
        gw.SetSettingRequest(
            scope=common.CONFIG_SOURCE_CHANNEL,
            location=_where(world),
            key=key,
            value=struct_pb2.Value(number_value=value),
        )
    )


def _where(world: World) -> common.Location:
    return common.Location(guild_id=str(world.guild["id"]), channel_id=str(world.general["id"]))


def answers(world: World) -> list[Posted]:
    return world.discord.webhook_messages(world.general)


async def chain_events(world: World) -> list[dict[str, Any]]:
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT reason, delivered_at, dropped_reason FROM core.bot_events "
                    "WHERE channel_id = :c ORDER BY created_at"
                ),
                {"c": str(world.general["id"])},
            )
            return [dict(r._mapping) for r in rows]
    finally:
        await engine.dispose()


async def settled(world: World, *, delivered: bool, within: float = 60.0) -> None:
    """Waits until the channel's one chain turn is queued (or, `delivered`, acknowledged)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        events = await chain_events(world)
        if len(events) == 1 and (bool(events[0]["delivered_at"]) or not delivered):
            assert (events[0]["reason"], events[0]["dropped_reason"]) == ("chain", "")
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"events never settled: {events}")
        await asyncio.sleep(0.1)


def jump_url(world: World, message: Posted) -> str:
    return f"https://discord.com/channels/{world.guild['id']}/{world.general['id']}/{message.id}"


async def test_a_chain_reply_quotes_the_answer_it_replies_to(world: World) -> None:
    await set_channel(world, "group_chain_cooldown_seconds", 0)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "someone start us off")
        await settled(world, delivered=True)
        first, reply = await world.discord.wait_until(
            lambda: len(answers(world)) >= 2 and answers(world)
        )
    quote, _, text = reply.content.partition("\n")
    # The first answer quotes Alice: its own quote line is no part of what it said.
    alices_quote, _, said = first.content.partition("\n")
    assert alices_quote.startswith(REPLY_QUOTE_PREFIX)
    assert first.author_name != reply.author_name
    assert len(said) < 60  # quoted whole (the fake provider's short echo)
    assert (
        quote == f"{REPLY_QUOTE_PREFIX} **{first.author_name}** {said} · {jump_url(world, first)}"
    )
    assert text.strip()


async def test_a_chain_reply_to_a_deleted_answer_is_posted_without_a_quote(
    world: World, clock: ManualClock
) -> None:
    await set_channel(world, "group_chain_cooldown_seconds", 600)
    async with running_bot(world):
        await world.discord.say(world.general, world.alice, "someone start us off")
        await settled(world, delivered=False)  # the reply waits out its cooldown
        [first] = await world.discord.wait_until(lambda: answers(world))
        await world.discord.delete_message(first)
        clock.advance(timedelta(seconds=601))
        await settled(world, delivered=True)
        [reply] = await world.discord.wait_until(lambda: answers(world))
    assert reply.id != first.id
    assert not reply.content.startswith(REPLY_QUOTE_PREFIX)
    assert reply.content.strip()
