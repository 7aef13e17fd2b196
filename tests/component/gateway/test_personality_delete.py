"""Deleting a personality forgets it in memory, in an order a sweep can finish: its answers in
flight first (a confirmation that lands while memory forgets stores nothing after it),
memory's ForgetPersonality, the row last. The deletion is recorded on the row before memory
is asked, so one that fails half way hides the personality at once and is finished by the
sweep (admin/deletions.py; tests/component/gateway/test_pending_deletions.py has the failures
after memory forgot). A user's data deletion does the same for each private personality of
theirs, not for the public ones they leave behind.

Real Postgres for `core`; memory is the conftest fake, which records what it forgot and lets
a confirmation land mid-deletion.
"""

from __future__ import annotations

import contextlib

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import GenerateEvent, HistoryTurn, JobAccepted, Personality
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import FailedPrecondition, NotFound, Unavailable

from .conftest import ALICE, MemoryConfirmedMeanwhile, StoredExchange, command

pytestmark = pytest.mark.component


@pytest.fixture
def memory() -> MemoryConfirmedMeanwhile:
    return MemoryConfirmedMeanwhile()


async def streamed(gateway: Gateway, key: str, personality: str = "lilith") -> str:
    """An answer generated and streamed, not confirmed yet (the bot is posting it): its job."""
    events: list[GenerateEvent] = [
        event async for event in gateway.generate(command(key=key, personality=personality))
    ]
    assert isinstance(events[0], JobAccepted)
    return events[0].job_id


def greeting(personality_id: str) -> StoredExchange:
    """The channel's greeting turn (no user): no user's forget takes it."""
    turn = HistoryTurn("assistant", "", "", "Welcome!", ("greet-1",))
    return StoredExchange("greeting", "channel-1", personality_id, "", (turn,))


async def test_deleting_a_personality_forgets_it_and_the_sweep_finishes_a_failed_one(
    gateway: Gateway,
    admin: Admin,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: MemoryConfirmedMeanwhile,
    lilith: Personality,
) -> None:
    sage, _ = await store.import_personality(PersonalitySeed(name="Sage"), owner_user_id=None)
    for key, personality in (("msg-1", "lilith"), ("msg-2", "sage")):
        await gateway.confirm_delivery(await streamed(gateway, key, personality), [f"{key}-a"])
    memory.exchanges.append(greeting(lilith.id))
    in_flight = await streamed(gateway, "msg-3")
    operator = Principal(None)  # `tzurot admin personalities delete`; lilith is public

    memory.error = Unavailable("memory is down")
    with pytest.raises(FailedPrecondition) as failed:
        await admin.delete_personality(operator, "lilith")
    assert failed.value.reason == "DELETION_PENDING"
    assert "finishes by itself" in failed.value.message
    assert await store.get_personality(lilith.id) is None  # hidden at once: answers nobody
    assert await personality_rows(engine, lilith.id) == 1  # its row waits for memory
    memory.error = None
    assert await admin.finish_pending_deletions() == 1  # nobody asked again

    assert memory.forgotten_personalities == [lilith.id]
    assert [e.personality_id for e in memory.exchanges] == [sage.id]
    assert await personality_rows(engine, lilith.id) == 0
    with pytest.raises(NotFound):  # its answer in flight went first
        await gateway.confirm_delivery(in_flight, ["msg-3-a"])
    assert [e.personality_id for e in memory.exchanges] == [sage.id]
    assert await admin.finish_pending_deletions() == 0


async def test_an_answer_confirmed_while_memory_forgets_is_not_stored_after(
    gateway: Gateway, admin: Admin, memory: MemoryConfirmedMeanwhile, lilith: Personality
) -> None:
    job_id = await streamed(gateway, "msg-1")

    async def bot_confirms() -> None:
        with contextlib.suppress(NotFound):  # its job is gone: nothing to deliver
            await gateway.confirm_delivery(job_id, ["answer-1"])

    memory.meanwhile = bot_confirms
    await admin.delete_personality(Principal(None), "lilith")

    assert memory.meanwhile is None  # the confirmation did land during the deletion
    assert memory.exchanges == []


async def test_deleting_her_data_forgets_her_private_personalities_only(
    gateway: Gateway,
    admin: Admin,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: MemoryConfirmedMeanwhile,
) -> None:
    user = await gateway.user(ALICE)
    mine, _ = await store.import_personality(
        PersonalitySeed(name="Secret", public=False), owner_user_id=user.id
    )
    shared, _ = await store.import_personality(
        PersonalitySeed(name="Shared", public=True), owner_user_id=user.id
    )
    memory.exchanges += [greeting(mine.id), greeting(shared.id)]

    memory.error = Unavailable("memory is down")
    with pytest.raises(FailedPrecondition) as failed:
        await admin.delete_user_data(Principal(user))
    assert failed.value.reason == "DELETION_PENDING"
    assert await store.get_personality(mine.id) is None  # hidden with her, at once
    memory.error = None
    assert await admin.finish_pending_deletions() == 2  # her private personality, then her

    assert memory.forgotten_personalities == [mine.id]
    assert [e.personality_id for e in memory.exchanges] == [shared.id]  # the channel's, kept
    assert await personality_rows(engine, mine.id) == 0
    kept = await store.get_personality(shared.id)
    assert kept is not None
    assert kept.owner_user_id is None


async def personality_rows(engine: AsyncEngine, personality_id: str) -> int:
    """The personality's rows, whether or not a lookup finds it (one being deleted: not)."""
    p = t.personalities.c
    async with engine.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).where(p.id == personality_id))
    return int(count or 0)
