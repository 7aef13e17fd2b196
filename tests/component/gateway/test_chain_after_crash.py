"""A group round's follow-up survives a gateway killed between the delivery and it, on real
Postgres: the bot's repeated ConfirmDelivery finds the job delivered and runs the follow-up
again (the last speaker, the chain reply), once however often it is repeated, without putting
an older answer's speaker over the one that followed, and not for a delivery too old for the
chain's dedup key to be kept (delivery_flow.py `_after_delivery_again`)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import JobAccepted, Location, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore

from .conftest import (
    ALICE,
    LIMITS,
    FakeInference,
    FakeKeyVault,
    FakeMemory,
    answer,
    command,
    seed,
)

pytestmark = pytest.mark.component

WHERE = Location(guild_id="guild-1", channel_id="channel-1")
ASKED = "Lilith and Sage, hello"


@pytest.fixture
async def group_gateway(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> AsyncIterator[Gateway]:
    """A gateway over #channel-1 where Lilith and Sage are both activated (a group)."""
    sage, _ = await store.import_personality(seed("sage"), owner_user_id=None)
    made = Gateway(
        store=store,
        inference=inference,
        memory=memory,
        turns=memory,
        keyvault=keyvault,
        limits=dataclasses.replace(LIMITS, group_seed="fixed"),
    )
    await made._admin_store.activate("guild-1", "channel-1", lilith.id, None)
    await made._admin_store.activate("guild-1", "channel-1", sage.id, None)
    yield made
    await made.stop_background()


async def chain_events(engine: AsyncEngine) -> list[dict[str, Any]]:
    e = g.bot_events.c
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(e.reason, e.depth, e.reply_to_message_id, e.personality_id).where(
                e.kind == "turn"
            )
        )
        return [dict(r._mapping) for r in found]


async def last_speaker(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        found = await conn.scalar(
            sa.select(g.channel_state.c.last_speaker_id).where(
                g.channel_state.c.conversation_id == WHERE.conversation_id
            )
        )
    return str(found)


async def answered_round(gateway: Gateway, inference: FakeInference) -> list[tuple[str, str]]:
    """A human message answered by both: the round's (job id, personality id), in order,
    generated but not confirmed yet."""
    user = await gateway.user(ALICE)
    round_id, speakers = await gateway.groups.plan(user, WHERE, ASKED, "m1")
    assert len(speakers) == 2
    inference.script = answer("Lilith and Sage both say hi.")
    jobs = []
    for n, p in enumerate(speakers):
        key = "m1" if n == 0 else f"m1:{p.slug}"
        made = command(ASKED, key=key, personality=p.slug, round_id=round_id)
        accepted, *_ = [e async for e in gateway.generate(made)]
        assert isinstance(accepted, JobAccepted)
        jobs.append((accepted.job_id, p.id))
    return jobs


async def test_a_chain_reply_lost_to_a_kill_after_the_delivery_is_queued_by_the_retry(
    group_gateway: Gateway,
    inference: FakeInference,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gw = group_gateway
    (first, first_speaker), (last, last_speaker_id) = await answered_round(gw, inference)
    await gw.confirm_delivery(first, ["post-0"])
    assert await last_speaker(engine) == first_speaker

    real = gw.groups.after_delivery

    async def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the replica is killed here")

    monkeypatch.setattr(gw.groups, "after_delivery", killed)
    with pytest.raises(RuntimeError):
        await gw.confirm_delivery(last, ["post-1"])  # delivered, its follow-up never ran
    monkeypatch.setattr(gw.groups, "after_delivery", real)
    assert await chain_events(engine) == []
    assert await last_speaker(engine) == first_speaker

    delivered = await gw.confirm_delivery(last, ["post-1"])  # the bot's retry
    assert delivered.delivered_message_ids == ("post-1",)
    (chain,) = await chain_events(engine)
    assert (chain["reason"], chain["depth"], chain["reply_to_message_id"]) == ("chain", 1, "post-1")
    assert chain["personality_id"] == first_speaker  # the other one answers the last
    assert await last_speaker(engine) == last_speaker_id

    # Repeated again: nothing more (the chain's dedup key); and once the chain's reply has
    # spoken (its delivery sets the last speaker), a repeat leaves that as it is.
    await gw.group_store.set_last_speaker(WHERE.conversation_id, first_speaker)
    await gw.confirm_delivery(last, ["post-1"])
    assert len(await chain_events(engine)) == 1
    assert await last_speaker(engine) == first_speaker
    # Nor does a repeat of the round's first answer put it over the one that followed it.
    await gw.group_store.set_last_speaker(WHERE.conversation_id, last_speaker_id)
    await gw.confirm_delivery(first, ["post-0"])
    assert len(await chain_events(engine)) == 1
    assert await last_speaker(engine) == last_speaker_id


async def test_a_repeated_confirmation_of_an_old_delivery_queues_no_chain(
    group_gateway: Gateway, inference: FakeInference, engine: AsyncEngine
) -> None:
    """Past the window (the chain's acknowledged event may have been deleted by the outbox's
    retention), a repeat runs no follow-up: no second chain reply."""
    gw = group_gateway
    (first, _), (last, _) = await answered_round(gw, inference)
    await gw.confirm_delivery(first, ["post-0"])
    await gw.confirm_delivery(last, ["post-1"])
    assert len(await chain_events(engine)) == 1
    age = sa.text(f"interval '{LIMITS.unfinished_max_age_seconds + 60} seconds'")
    async with engine.begin() as conn:
        await conn.execute(sa.delete(g.bot_events))  # as the retention sweep does, later
        await conn.execute(
            sa.update(t.jobs).where(t.jobs.c.id == last).values(delivered_at=sa.func.now() - age)
        )
    await gw.confirm_delivery(last, ["post-1"])
    assert await chain_events(engine) == []
