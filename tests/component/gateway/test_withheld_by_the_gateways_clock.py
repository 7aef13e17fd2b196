"""An answer a dead bot left half shown, withheld by a deletion (store/previews.py's
withhold_unfinished), is due by the gateway's clock, not the database's: the gateway claims
bot events by its own clock, so a database clock ahead of it (or a test's ManualClock behind
real time) would hold the bot's "why" notice back by the skew, or for ever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.clock import ManualClock
from tzurot.gateway.domain import JobAccepted, Personality
from tzurot.gateway.group_store import GroupStore
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.gateway.store.in_flight import drop_personality_answers

from .conftest import ALICE, command

pytestmark = pytest.mark.component

PREVIEW = ["900", "901"]
BEHIND = datetime(2020, 1, 1, tzinfo=UTC)


async def half_shown(gateway: Gateway) -> str:
    """A whole answer shown as PREVIEW whose bot died before confirming it; its job id."""
    stream = gateway.generate(command(key="msg-1"))
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    async for _ in stream:
        pass
    await gateway.note_preview(accepted.job_id, PREVIEW)
    return accepted.job_id


async def claimed_by(clock: ManualClock, engine: AsyncEngine) -> list[tuple[str, str]]:
    events = await GroupStore(engine, clock).claim_events(clock.now(), timedelta(seconds=60), 0, 1)
    return [(event.kind, event.reason) for event in events]


async def test_her_data_deletions_withheld_answer_is_due_by_the_gateways_clock(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    await half_shown(gateway)
    behind = ManualClock(BEHIND)
    alice = await gateway.user(ALICE)
    admin_store = AdminStore(store.engine, store.catalog)

    await admin_store.delete_user_content(alice.id, behind.now())

    assert await claimed_by(behind, engine) == [("unfinished", "USER_DATA_DELETING")]


async def test_a_personality_deletions_withheld_answer_is_due_by_the_gateways_clock(
    gateway: Gateway, engine: AsyncEngine, lilith: Personality
) -> None:
    await half_shown(gateway)
    behind = ManualClock(BEHIND)

    async with engine.begin() as conn:
        assert await drop_personality_answers(conn, lilith.id, behind.now()) == 1

    assert await claimed_by(behind, engine) == [("unfinished", "PERSONALITY_DELETED")]
