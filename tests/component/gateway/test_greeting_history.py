"""A posted greeting reaches history exactly once, even when memory is away when the bot
acknowledges it, and even when the gateway that took the acknowledgement is gone before
memory is back: the acknowledgement succeeds (the bot must not post it again), the greeting's
history stays pending in Postgres, and the sweep (this gateway's, or a new one's over the same
database) stores it once memory returns. A greeting memory refuses for good, or whose
personality was deleted since, is not tried again.

Real Postgres for `core`; memory is the conftest fake, failing (`error`) and then recovering.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import HistoryTurn, Location, Personality
from tzurot.gateway.greetings import Greetings
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import FailedPrecondition, TzurotError, Unavailable
from tzurot.testing.waits import until

from .conftest import LIMITS, FakeInference, FakeKeyVault, FakeMemory, StoredExchange

pytestmark = pytest.mark.component

WHERE = Location(guild_id="guild-1", channel_id="channel-1")
POSTED = ("greeting-message-1",)
MEMORY_RESTARTING = Unavailable("memory is restarting")
MEMORY_TOO_SLOW = TzurotError("memory took too long", code=grpc.StatusCode.DEADLINE_EXCEEDED)


async def queued(gateway: Gateway, memory: FakeMemory, lilith: Personality) -> str:
    """Lilith activated in the channel: her greeting queued, then claimed by the bot."""
    greeter = dataclasses.replace(lilith, card={"first_mes": "Welcome, {{user}}."})
    event_id = await Greetings(gateway.group_store, memory).activated(
        WHERE,
        greeter,
        user_id=None,
        user_name="Alice",
        others_active=False,
        activation_key="activated-1",
    )
    assert event_id is not None
    now = gateway.clock.now()
    (claimed,) = await gateway.group_store.claim_events(now, timedelta(seconds=60), 0, 1)
    assert claimed.id == event_id
    return event_id


def restarted(store: GatewayStore, memory: FakeMemory) -> Gateway:
    """A new gateway process over the same database (nothing of the old one's memory)."""
    return Gateway(
        store=GatewayStore(store.engine),
        inference=FakeInference(),
        memory=memory,
        keyvault=FakeKeyVault(),
        limits=LIMITS,
    )


def the_greeting(event_id: str, lilith: Personality) -> StoredExchange:
    """The greeting as history: the channel's (no user), and no memory forms from it."""
    turn = HistoryTurn("assistant", lilith.slug, lilith.display_name, "Welcome, Alice.", POSTED)
    return StoredExchange(event_id, "channel-1", lilith.id, "", (turn,), form_memories=False)


async def greeting_effects(engine: AsyncEngine) -> list[dict[str, Any]]:
    """The greetings recorded in the conversation's lore state (for @@is_greeting)."""
    async with engine.connect() as conn:
        effects = await conn.scalar(
            sa.select(t.lore_states.c.effects).where(t.lore_states.c.channel_id == "channel-1")
        )
    return [e for e in effects or [] if e["kind"] == "greeting"]


async def sent_again(gateway: Gateway) -> bool:
    """Whether the bot would be handed the event again (its lease long over)."""
    later = gateway.clock.now() + timedelta(hours=1)
    return bool(await gateway.group_store.claim_events(later, timedelta(seconds=60), 0, 1))


async def stored_by_the_sweep(gateway: Gateway, memory: FakeMemory) -> None:
    """Runs the gateway's sweeps (as app.py does) until memory holds an exchange, then a few
    more rounds, so that a second store would show."""
    sweeping = asyncio.create_task(gateway.run_sweeps(0.01))
    try:
        await until(lambda: memory.exchanges, "memory holds the exchange", within=30)
        await asyncio.sleep(0.1)
    finally:
        sweeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeping


@pytest.mark.parametrize(
    "outage", [MEMORY_RESTARTING, MEMORY_TOO_SLOW], ids=["unavailable", "deadline"]
)
async def test_a_greeting_acknowledged_while_memory_is_away_is_stored_once_by_a_restarted_gateway(
    *,
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: FakeMemory,
    lilith: Personality,
    outage: TzurotError,
) -> None:
    event_id = await queued(gateway, memory, lilith)
    memory.error = outage
    # The bot posted it: the acknowledgement succeeds although memory is away.
    await gateway.acknowledge_event(event_id, POSTED, "")
    event = await gateway.group_store.event(event_id)
    assert event is not None
    assert (event.delivered, event.message_ids, event.history_status) == (True, POSTED, "pending")
    assert not await sent_again(gateway)  # the bot never posts it twice
    assert await gateway.store_pending_greetings() == 0  # memory still away: kept for later
    assert memory.exchanges == []

    # This gateway stops; memory comes back; a new gateway over the same database stores it.
    memory.error = None
    await stored_by_the_sweep(restarted(store, memory), memory)
    assert memory.exchanges == [the_greeting(event_id, lilith)]
    assert len(await greeting_effects(engine)) == 1  # lore's @@is_greeting, recorded once

    # Nothing stores it again: the old gateway's sweep, another new one, the bot's
    # acknowledgement sent again.
    assert await gateway.store_pending_greetings() == 0
    assert await restarted(store, memory).store_pending_greetings() == 0
    await gateway.acknowledge_event(event_id, POSTED, "")
    assert memory.exchanges == [the_greeting(event_id, lilith)]
    assert len(await greeting_effects(engine)) == 1
    event = await gateway.group_store.event(event_id)
    assert event is not None
    assert event.history_status == "stored"


async def test_a_greeting_is_stored_by_the_same_gateways_next_sweep_once_memory_is_back(
    gateway: Gateway, engine: AsyncEngine, memory: FakeMemory, lilith: Personality
) -> None:
    event_id = await queued(gateway, memory, lilith)
    memory.error = MEMORY_RESTARTING
    with structlog.testing.capture_logs() as logs:
        await gateway.acknowledge_event(event_id, POSTED, "")
        memory.error = None
        assert await gateway.store_pending_greetings() == 1
        assert await gateway.store_pending_greetings() == 0
    assert memory.exchanges == [the_greeting(event_id, lilith)]
    assert len(await greeting_effects(engine)) == 1
    assert [e["event"] for e in logs if e["event"].startswith("greeting.")] == [
        "greeting.history_pending",
        "greeting.history_stored_late",
    ]


async def test_a_gateway_killed_while_memory_stores_the_greeting_leaves_it_for_the_next(
    *,
    gateway: Gateway,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: FakeMemory,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The acknowledgement's own statement notes the greeting pending: a gateway that stops
    right after it (its call cancelled while memory is asked) loses nothing."""
    event_id = await queued(gateway, memory, lilith)
    asked = asyncio.Event()

    async def hanging(**fields: Any) -> None:
        asked.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(memory, "store_exchange", hanging)
    acknowledging = asyncio.create_task(gateway.acknowledge_event(event_id, POSTED, ""))
    await asyncio.wait_for(asked.wait(), 10)
    acknowledging.cancel()  # the gateway goes away mid-call
    with pytest.raises(asyncio.CancelledError):
        await acknowledging
    assert not await sent_again(gateway)
    monkeypatch.undo()

    await stored_by_the_sweep(restarted(store, memory), memory)
    assert memory.exchanges == [the_greeting(event_id, lilith)]
    assert len(await greeting_effects(engine)) == 1


async def test_a_greeting_stored_at_once_is_not_stored_again(
    gateway: Gateway, engine: AsyncEngine, memory: FakeMemory, lilith: Personality
) -> None:
    event_id = await queued(gateway, memory, lilith)
    await gateway.acknowledge_event(event_id, POSTED, "")
    assert memory.exchanges == [the_greeting(event_id, lilith)]
    await gateway.acknowledge_event(event_id, POSTED, "")  # the bot's ack sent again
    assert await gateway.store_pending_greetings() == 0
    assert memory.exchanges == [the_greeting(event_id, lilith)]
    assert len(await greeting_effects(engine)) == 1


async def test_a_greeting_memory_refuses_for_good_is_marked_and_not_tried_again(
    gateway: Gateway,
    store: GatewayStore,
    memory: FakeMemory,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event_id = await queued(gateway, memory, lilith)
    memory.error = MEMORY_RESTARTING
    await gateway.acknowledge_event(event_id, POSTED, "")
    memory.error = None
    tried: list[str] = []

    async def refusing(*, job_id: str, **fields: Any) -> None:
        tried.append(job_id)
        raise FailedPrecondition("an exchange memory cannot take")

    monkeypatch.setattr(memory, "store_exchange", refusing)
    with structlog.testing.capture_logs() as logs:
        assert await gateway.store_pending_greetings() == 0
        assert await restarted(store, memory).store_pending_greetings() == 0
    assert tried == [event_id]
    assert [e["event"] for e in logs if e["event"].startswith("greeting.")] == [
        "greeting.history_refused"
    ]
    event = await gateway.group_store.event(event_id)
    assert event is not None
    assert event.history_status == "refused"


async def test_a_pending_greeting_whose_personality_was_deleted_is_not_stored(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    memory: FakeMemory,
    lilith: Personality,
) -> None:
    event_id = await queued(gateway, memory, lilith)
    memory.error = MEMORY_RESTARTING
    await gateway.acknowledge_event(event_id, POSTED, "")
    memory.error = None
    await admin.delete_personality(Principal(None), "lilith")  # the operator deletes her

    assert await gateway.store_pending_greetings() == 0
    assert await restarted(store, memory).store_pending_greetings() == 0
    assert memory.exchanges == []
    assert await gateway.group_store.event(event_id) is None  # went with her
