"""Nothing is handed to the bot to post as a personality that is being deleted: its greeting
or free-will turn, queued before or during the deletion, is dropped by the claim
(PERSONALITY_DELETING) instead of being posted under its name; once the deletion finishes,
its row takes its events with it (ON DELETE CASCADE). (Its unfinished answer is handed out
withheld, to say why: test_unfinished_of_deleted_personality.py.) Real Postgres for `core`.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import Location, Personality
from tzurot.gateway.greetings import Greetings
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore

from .conftest import FakeMemory, seed

pytestmark = pytest.mark.component

WHERE = Location(guild_id="guild-1", channel_id="channel-1")
LEASE = timedelta(seconds=60)


async def greeting_of(gateway: Gateway, memory: FakeMemory, personality: Personality) -> str:
    """The personality activated in the channel: its greeting queued."""
    greeter = dataclasses.replace(personality, card={"first_mes": "Welcome, {{user}}."})
    event_id = await Greetings(gateway.group_store, memory).activated(
        WHERE,
        greeter,
        user_id=None,
        user_name="Alice",
        others_active=False,
        activation_key=f"activated-{personality.slug}",
    )
    assert event_id is not None
    return event_id


async def free_will_turn_of(gateway: Gateway, personality: Personality) -> str:
    event_id = await gateway.group_store.add_event(
        {
            "kind": "turn",
            "dedup_key": f"freewill:{WHERE.conversation_id}:2026-12-02:1",
            "guild_id": WHERE.guild_id,
            "channel_id": WHERE.channel_id,
            "personality_id": personality.id,
            "reason": "free will",
        }
    )
    assert event_id is not None
    return event_id


async def deleting(store: GatewayStore, personality: Personality) -> None:
    """Its deletion starts (and stays under way: memory away, the sweep retrying)."""
    await AdminStore(store.engine, store.catalog).mark_personality_deleting(personality.id, 60)


async def test_events_of_a_personality_being_deleted_are_dropped_not_handed_out(
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: FakeMemory,
    lilith: Personality,
) -> None:
    other, created = await store.import_personality(seed("sage"), owner_user_id=None)
    assert created
    greeting = await greeting_of(gateway, memory, lilith)
    turn = await free_will_turn_of(gateway, lilith)
    others = await greeting_of(gateway, memory, other)
    await deleting(store, lilith)

    claimed = await gateway.group_store.claim_events(gateway.clock.now(), LEASE, 0, 1)

    assert [e.id for e in claimed] == [others]  # another personality's greeting still goes
    for event_id in (greeting, turn):
        row = await gateway.group_store.event(event_id)
        assert row is not None
        assert (row.delivered, row.dropped_reason, row.message_ids) == (
            True,
            "PERSONALITY_DELETING",
            (),
        )
        assert row.history_status == ""  # nothing posted: no greeting history to store
    later = gateway.clock.now() + 2 * LEASE  # hers never come back (the other one does)
    assert [e.id for e in await gateway.group_store.claim_events(later, LEASE, 0, 1)] == [others]

    # The deletion finishes: her row takes her events with it.
    async with engine.begin() as conn:
        await conn.execute(sa.delete(t.personalities).where(t.personalities.c.id == lilith.id))
        left = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(g.bot_events)
            .where(g.bot_events.c.personality_id == lilith.id)
        )
    assert left == 0


async def test_an_event_handed_out_before_the_deletion_is_dropped_when_it_comes_back(
    gateway: Gateway, store: GatewayStore, memory: FakeMemory, lilith: Personality
) -> None:
    """Claimed just before her deletion started, its bot went away without a word: when its
    lease runs out it is not handed out again."""
    greeting = await greeting_of(gateway, memory, lilith)
    now = gateway.clock.now()
    assert [e.id for e in await gateway.group_store.claim_events(now, LEASE, 0, 1)] == [greeting]
    await deleting(store, lilith)

    assert await gateway.group_store.claim_events(now + 2 * LEASE, LEASE, 0, 1) == []
    row = await gateway.group_store.event(greeting)
    assert row is not None
    assert (row.delivered, row.dropped_reason) == (True, "PERSONALITY_DELETING")
