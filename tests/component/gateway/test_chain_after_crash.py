"""A group round's follow-up survives a gateway killed between the delivery and it, on real
Postgres: the bot's repeated ConfirmDelivery finds the job delivered and runs the follow-up
again (the last speaker, the chain reply), once however often it is repeated, without putting
an older answer's speaker over the one that followed, and not for a delivery too old for the
chain's dedup key to be kept (delivery_flow.py `_after_delivery_again`). A delivery no
confirmation repeats (the pending-history sweep's) owes its follow-up in the delivery's own
statement (`group_follow_ups`), which a gateway's sweep runs once the killed one's hold ran
out, on one replica only, or drops when the delivery is too old (`run_owed_follow_ups`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import JobAccepted, JobStatus, Location, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import Unavailable

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


def replica(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> Gateway:
    """A gateway process over the shared database (the same seed as every other)."""
    return Gateway(
        store=store,
        inference=inference,
        memory=memory,
        turns=memory,
        keyvault=keyvault,
        limits=dataclasses.replace(LIMITS, group_seed="fixed"),
    )


@pytest.fixture
def restart(
    store: GatewayStore, inference: FakeInference, memory: FakeMemory, keyvault: FakeKeyVault
) -> Callable[[], Gateway]:
    """Starts another gateway process over the shared database (a restart, a second replica)."""
    return lambda: replica(store, inference, memory, keyvault)


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
    made = replica(store, inference, memory, keyvault)
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


async def owed_follow_ups(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.scalars(sa.select(g.group_follow_ups.c.job_id))
        return [str(job_id) for job_id in found]


async def hold_runs_out(engine: AsyncEngine) -> None:
    """The killed gateway's hold on its follow-up (a job lease) ends, as it would later."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(g.group_follow_ups).values(
                due_at=sa.func.now() - sa.text("interval '1 second'")
            )
        )


async def delivered_long_ago(engine: AsyncEngine, job_id: str) -> None:
    """The job's delivery moves back past the chain's window (`unfinished_max_age_seconds`)."""
    age = sa.text(f"interval '{LIMITS.unfinished_max_age_seconds + 60} seconds'")
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(t.jobs).where(t.jobs.c.id == job_id).values(delivered_at=sa.func.now() - age)
        )


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

    assert await owed_follow_ups(engine) == [last]  # owed since the delivery's statement

    delivered = await gw.confirm_delivery(last, ["post-1"])  # the bot's retry
    assert delivered.delivered_message_ids == ("post-1",)
    assert await owed_follow_ups(engine) == []  # run: owed no more
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
    async with engine.begin() as conn:
        await conn.execute(sa.delete(g.bot_events))  # as the retention sweep does, later
    await delivered_long_ago(engine, last)
    await gw.confirm_delivery(last, ["post-1"])
    assert await chain_events(engine) == []


@pytest.fixture
async def swept_then_killed(
    group_gateway: Gateway,
    inference: FakeInference,
    memory: FakeMemory,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[str, str, str]:
    """A round whose last answer was confirmed while memory was away, then delivered by the
    pending-history sweep of a gateway killed before its follow-up: (the round's last job,
    the first speaker, the last speaker). The bot's confirmation had succeeded: none comes
    again."""
    gw = group_gateway
    (first, first_speaker), (last, last_speaker_id) = await answered_round(gw, inference)
    await gw.confirm_delivery(first, ["post-0"])
    assert await owed_follow_ups(engine) == []  # not the round's last: nothing a repeat does
    memory.error = Unavailable("memory is restarting")
    pending = await gw.confirm_delivery(last, ["post-1"])
    assert pending.delivered_message_ids == ("post-1",)  # noted: stored by the sweep later
    memory.error = None

    async def killed(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the replica is killed here")

    monkeypatch.setattr(gw.groups, "after_delivery", killed)
    with pytest.raises(RuntimeError):
        await gw.store_pending_history()  # delivered, its follow-up never ran
    monkeypatch.undo()
    job = await gw._store.get_job(last)
    assert job is not None
    assert (job.status, job.delivered_message_ids) == (JobStatus.DELIVERED, ("post-1",))
    assert await chain_events(engine) == []
    assert await owed_follow_ups(engine) == [last]
    return last, first_speaker, last_speaker_id


async def test_a_chain_reply_lost_to_a_kill_in_the_history_sweep_is_queued_by_a_restart(
    swept_then_killed: tuple[str, str, str], restart: Callable[[], Gateway], engine: AsyncEngine
) -> None:
    last, first_speaker, last_speaker_id = swept_then_killed
    restarted = restart()
    # Within the killed gateway's hold (a job lease) the follow-up is still its own.
    assert await restarted.run_owed_follow_ups() == 0
    assert await chain_events(engine) == []

    await hold_runs_out(engine)
    sweeps = asyncio.create_task(restarted.run_sweeps(0.05))  # as at its start
    try:
        # Until the sweep is done with it: the chain's event queued, and the follow-up no
        # longer owed (a step after the event's insert: a cancel between them leaves it owed).
        for _ in range(200):
            if await chain_events(engine) and not await owed_follow_ups(engine):
                break
            await asyncio.sleep(0.05)
    finally:
        sweeps.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sweeps
        await restarted.stop_background()
    (chain,) = await chain_events(engine)
    assert (chain["reason"], chain["depth"], chain["reply_to_message_id"]) == ("chain", 1, "post-1")
    assert chain["personality_id"] == first_speaker
    assert await last_speaker(engine) == last_speaker_id
    assert await owed_follow_ups(engine) == []

    # Once only: nothing is owed any more, and a late repeated confirmation changes nothing.
    assert await restarted.run_owed_follow_ups() == 0
    await restarted.confirm_delivery(last, ["post-1"])
    assert len(await chain_events(engine)) == 1


async def test_an_owed_follow_up_older_than_the_window_is_dropped_without_a_chain_reply(
    swept_then_killed: tuple[str, str, str], restart: Callable[[], Gateway], engine: AsyncEngine
) -> None:
    """Past the window a repeat may find the chain's event deleted by the outbox's retention,
    and queue the reply a second time: the owed follow-up goes, unrun."""
    last, first_speaker, _ = swept_then_killed
    await delivered_long_ago(engine, last)
    await hold_runs_out(engine)
    restarted = restart()
    assert await restarted.run_owed_follow_ups() == 0
    assert await owed_follow_ups(engine) == []
    assert await chain_events(engine) == []
    assert await last_speaker(engine) == first_speaker  # left as it was


async def test_two_replicas_sweeping_at_once_run_an_owed_follow_up_once(
    swept_then_killed: tuple[str, str, str], restart: Callable[[], Gateway], engine: AsyncEngine
) -> None:
    """One replica claims it (FOR UPDATE SKIP LOCKED, for a lease): not only one chain reply
    (its dedup key would see to that) but one run. A sweep that dies after its claim leaves
    it to another once the lease ran out."""
    last, first_speaker, _ = swept_then_killed
    await hold_runs_out(engine)
    a, b = restart(), restart()
    assert sorted(await asyncio.gather(a.run_owed_follow_ups(), b.run_owed_follow_ups())) == [
        0,
        1,
    ]
    (chain,) = await chain_events(engine)
    assert chain["personality_id"] == first_speaker
    assert await owed_follow_ups(engine) == []

    # A row another replica's claim holds locked is passed over at once, not waited for.
    async with engine.begin() as conn:
        await conn.execute(sa.insert(g.group_follow_ups).values(job_id=last, due_at=sa.func.now()))
    async with engine.begin() as claiming:
        f = g.group_follow_ups.c
        await claiming.execute(sa.select(f.job_id).where(f.job_id == last).with_for_update())
        async with asyncio.timeout(5):
            assert await b.run_owed_follow_ups() == 0

    # A sweep killed after its claim: the follow-up waits out that sweep's lease.
    window = timedelta(seconds=LIMITS.unfinished_max_age_seconds)
    claimed = await a.group_store.claim_owed_follow_ups(window, LIMITS.job_lease_seconds, 20)
    assert claimed.claimed == (last,)
    assert await b.run_owed_follow_ups() == 0  # a's lease
    await hold_runs_out(engine)
    assert await b.run_owed_follow_ups() == 1
    assert len(await chain_events(engine)) == 1  # the dedup key: queued before
    assert await owed_follow_ups(engine) == []
