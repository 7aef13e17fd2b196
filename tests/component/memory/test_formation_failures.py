"""The formation worker when things fail, on real Postgres: an embedder or database
outage drops no exchange and counts no attempt (the jobs wait, and so does the worker);
a job failing alone waits longer after each attempt; a batch slower than its lease keeps
it (renewed), also while it waits for the batch before it, so two replicas do not take it
from each other for ever; a job whose lease keeps being lost is dropped in the end; and a
batch one of whose jobs went (forgotten, or leased again elsewhere) writes the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.memory.domain import Exchange, NewTurn
from tzurot.memory.embedding import Embedder, EmbeddingError, Vector
from tzurot.memory.forget_user import UserForgetter
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import formation_outbox, memories
from tzurot.testing.waits import until

from .test_formation_replicas import CountingStatements, store_exchanges

pytestmark = pytest.mark.component

PERSONA = "lilith"


class Flaky:
    """The real embedder, down (every call fails as an unreachable endpoint's does) while
    `down`; counts its calls, and takes `delay` seconds over each."""

    def __init__(self, inner: Embedder, delay: float = 0.0) -> None:
        self.inner = inner
        self.down = False
        self.delay = delay
        self.calls = 0

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.down:
            raise EmbeddingError("embeddings endpoint failed: APIConnectionError")
        return await self.inner.embed(texts)

    async def aclose(self) -> None:
        return None


async def _outbox(engine: AsyncEngine) -> dict[str, tuple[int, float | None]]:
    """Each outbox row's job: its attempts, and in how many seconds it is free again."""
    free_in = sa.extract("epoch", formation_outbox.c.claimed_until - sa.func.now())
    stmt = sa.select(formation_outbox.c.job_id, formation_outbox.c.attempts, free_in)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return {
        job: (attempts, None if seconds is None else float(seconds))
        for job, attempts, seconds in rows
    }


async def _all_claimed(engine: AsyncEngine) -> bool:
    """Whether every job left in the outbox was claimed (formed ones have left it)."""
    return all(attempts >= 1 for attempts, _ in (await _outbox(engine)).values())


async def _formed(engine: AsyncEngine, count: int) -> bool:
    return await _count(engine) == count


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(memories)) or 0)


async def _free_now(engine: AsyncEngine) -> None:
    """Every wait of the outbox over (the time passes)."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(formation_outbox).values(
                claimed_until=sa.func.now() - sa.text("'1s'::interval")
            )
        )


async def _store(engine: AsyncEngine, job_id: str, user: str, text: str) -> None:
    await PostgresTurnStore(engine).store_exchange(
        Exchange(job_id, "chan-f", PERSONA, user, (NewTurn("user", text),))
    )


async def test_an_embedder_outage_drops_no_exchange_however_many_passes(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """Five passes with the embedder down used to drop the exchange (one attempt each)."""
    flaky = Flaky(embedder)
    flaky.down = True
    await _store(engine, "j0", "u", "remember that parcel 7 goes to the blue house")
    store = PostgresMemoryStore(engine)
    worker = Formation(store, LongTermMemory(store, flaky))
    for _pass in range(6):
        assert await worker.drain() == 0
        await _free_now(engine)
    attempts, _free_in = (await _outbox(engine))["j0"]
    assert attempts == 0  # an outage is no attempt
    assert worker.backoff > 0
    flaky.down = False
    assert await worker.drain() == 1
    assert worker.backoff == 0
    assert await _count(engine) == 1
    assert await _outbox(engine) == {}


async def test_an_outage_gives_the_jobs_back_for_the_backoff_which_doubles(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    flaky = Flaky(embedder)
    flaky.down = True
    await store_exchanges(engine, 3)
    store = PostgresMemoryStore(engine)
    worker = Formation(store, LongTermMemory(store, flaky), backoff_seconds=30)
    assert await worker.drain() == 0
    outbox = await _outbox(engine)
    assert {attempts for attempts, _free_in in outbox.values()} == {0}
    assert all(28 < (free_in or 0) <= 30 for _attempts, free_in in outbox.values())
    assert worker.backoff == 30
    assert await worker.drain() == 0  # nothing free: the jobs wait
    await _free_now(engine)
    assert await worker.drain() == 0
    assert worker.backoff == 60
    outbox = await _outbox(engine)
    assert all(58 < (free_in or 0) <= 60 for _attempts, free_in in outbox.values())
    # The batch once, then the embedder probed once, each pass: not one call per job.
    assert flaky.calls == 4


class DatabaseDown(PostgresMemoryStore):
    """Postgres unreachable for a batch's reads and for the worker's check (its claim and
    its giving back still get through)."""

    down = True

    async def nearest_many(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise ConnectionRefusedError("connection refused")
        return await super().nearest_many(*args, **kwargs)

    async def ping(self) -> None:
        if self.down:
            raise ConnectionRefusedError("connection refused")
        await super().ping()


async def test_a_database_outage_counts_no_attempt_either(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    await store_exchanges(engine, 2)
    store = DatabaseDown(engine)
    worker = Formation(store, LongTermMemory(store, embedder))
    for _pass in range(6):
        assert await worker.drain() == 0
        await _free_now(engine)
    assert {attempts for attempts, _free_in in (await _outbox(engine)).values()} == {0}
    store.down = False
    assert await worker.drain() == 2
    assert await _count(engine) == 2


async def test_the_running_worker_rides_out_a_short_outage_under_traffic(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """Exchanges arrive (each kicks the worker) while the embedder is down for 4 s: the
    worker tries once, then waits its backoff (5 s), kicks or not, and forms every one once
    the embedder is back. Each kick used to start a pass that counted an attempt for every
    job pending (and called the embedder for each), so a few seconds dropped them."""
    flaky = Flaky(embedder)
    turns = PostgresTurnStore(engine)
    store = PostgresMemoryStore(engine)
    worker = Formation(store, LongTermMemory(store, flaky), gather_seconds=0.05)
    calls_while_down: list[int] = []

    def back_up() -> None:
        calls_while_down.append(flaky.calls)
        flaky.down = False

    worker.start()
    flaky.down = True
    # Back up 4 s from now by the loop's clock, as the worker's backoff is counted: on a
    # loaded machine the exchanges below may take longer than its 5 s backoff to store.
    outage = asyncio.get_running_loop().call_later(4.0, back_up)
    try:
        for n in range(16):
            text = f"remember that parcel {n} goes to the blue house on street {n}"
            await turns.store_exchange(
                Exchange(f"j{n}", "c", PERSONA, "u", (NewTurn("user", text),))
            )
            worker.kick()
            await asyncio.sleep(0.25)
        await until(lambda: calls_while_down, "the embedder came back")
        await until(lambda: _formed(engine, 16), "every exchange was formed", within=20)
    finally:
        outage.cancel()
        await worker.stop()
    assert calls_while_down == [2]  # the first batch, then the check that the embedder is down
    assert await _count(engine) == 16
    assert await _outbox(engine) == {}


class FailsAlone(LongTermMemory):
    """Real formation, but any batch holding job `bad` fails (a poison exchange)."""

    def __init__(self, *args: Any, bad: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bad = bad

    async def form_many(self, exchanges: Any, *args: Any, **kwargs: Any) -> int:
        if any(turns and turns[0].job_id == self.bad for turns in exchanges):
            raise ValueError("cannot form this one")
        return await super().form_many(exchanges, *args, **kwargs)


async def test_a_job_failing_alone_waits_twice_as_long_after_each_attempt_then_goes(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    jobs = await store_exchanges(engine, 3)
    store = PostgresMemoryStore(engine)
    worker = Formation(
        store, FailsAlone(store, embedder, bad=jobs[1]), retry_seconds=100, max_attempts=3
    )
    assert await worker.drain() == 2  # the others formed
    attempts, free_in = (await _outbox(engine))[jobs[1]]
    assert attempts == 1
    assert free_in is not None
    assert 98 < free_in <= 100
    assert await worker.drain() == 0  # not tried again before its wait is over
    await _free_now(engine)
    assert await worker.drain() == 0
    attempts, free_in = (await _outbox(engine))[jobs[1]]
    assert attempts == 2
    assert free_in is not None
    assert 198 < free_in <= 200
    await _free_now(engine)
    assert await worker.drain() == 0
    assert await _outbox(engine) == {}  # its third attempt: dropped
    assert worker.backoff == 0  # the embedder was up all along: no outage


class Slow(Flaky):
    """The real embedder taking `delay` seconds a call."""


async def test_two_replicas_with_a_batch_slower_than_the_lease_form_it_once(
    engine: AsyncEngine, memory_url: str, embedder: Embedder
) -> None:
    """The lease (0.6 s) is renewed while the batch embeds (1 s): the other replica never
    takes it. Without renewal each took it from the other for ever, embedding it each time,
    and nothing was formed."""
    await _store(engine, "j1", "u", "remember that my locker code is 1234")
    slow = Slow(embedder, delay=1.0)
    engines = [engine, create_engine(memory_url)]
    workers = []
    for each in engines:
        store = PostgresMemoryStore(each)
        workers.append(
            Formation(store, LongTermMemory(store, slow), poll_seconds=0.1, lease_seconds=0.6)
        )
    try:
        for worker in workers:
            worker.start()
        await until(lambda: _formed(engine, 1), "the batch was formed", within=30)
        for worker in workers:
            await worker.stop(1)
    finally:
        await engines[1].dispose()
    assert await _count(engine) == 1
    assert await _outbox(engine) == {}
    assert slow.calls == 1


class SlowWrites(PostgresMemoryStore):
    """Postgres taking `delay` seconds over each batch's writes."""

    delay = 1.2

    async def write_formed(self, *args: Any, **kwargs: Any) -> bool:
        await asyncio.sleep(self.delay)
        return await super().write_formed(*args, **kwargs)


async def test_a_pipelined_batch_keeps_its_lease_while_it_waits_for_the_one_before(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """The second batch is claimed and embedded at once, then waits for the first one's
    write (1.2 s, twice its 0.6 s lease): no other replica may lease it meanwhile."""
    jobs = await store_exchanges(engine, 4)
    store = SlowWrites(engine)
    worker = Formation(store, LongTermMemory(store, embedder), batch=2, lease_seconds=0.6)
    drain = asyncio.create_task(worker.drain())
    await until(lambda: _all_claimed(engine), "both batches were claimed")
    await asyncio.sleep(0.8)  # past the lease: the second batch, waiting, holds it renewed
    other = PostgresMemoryStore(engine)
    assert await other.claim_formation(10, lease=60) is None
    assert await drain == 4
    assert await _count(engine) == len(jobs)


async def test_a_job_whose_lease_keeps_being_lost_is_dropped(engine: AsyncEngine) -> None:
    """A worker dying on a job (or slower than its lease) each time it is claimed: each
    claim counts an attempt, and the claim after the last drops it."""
    (job,) = await store_exchanges(engine, 1)
    store = PostgresMemoryStore(engine)
    for attempt in range(1, 6):  # max_attempts is 5
        claim = await store.claim_formation(10, lease=60)
        assert claim is not None
        assert claim.job_ids == (job,)
        assert (await _outbox(engine))[job][0] == attempt
        await _free_now(engine)  # the lease runs out: the worker died
    claim = await store.claim_formation(10, lease=60)
    assert claim is not None
    assert (claim.job_ids, claim.dropped) == ((), (job,))
    assert await _outbox(engine) == {}


async def test_the_worker_logs_and_moves_past_a_dropped_job(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    jobs = await store_exchanges(engine, 3)
    async with engine.begin() as conn:  # its leases lost five times already
        await conn.execute(
            sa.update(formation_outbox)
            .where(formation_outbox.c.job_id == jobs[0])
            .values(attempts=5)
        )
    store = PostgresMemoryStore(engine)
    worker = Formation(store, LongTermMemory(store, embedder), batch=2)
    assert await worker.drain() == 2
    assert await _count(engine) == 2
    assert await _outbox(engine) == {}


async def test_a_batch_one_of_whose_users_was_forgotten_forms_the_others(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """ForgetUser of one user of a batch deletes that job's outbox row: the batch's other
    jobs are formed and end all the same (the whole batch used to be thrown away)."""
    await _store(engine, "j-ann", "ann", "my sister Dana lives in Lisbon with two cats")
    await _store(engine, "j-bob", "bob", "i collect vintage stamps from japan")
    store = PostgresMemoryStore(engine)
    claim = await store.claim_formation(10, lease=60)
    assert claim is not None
    assert set(claim.job_ids) == {"j-ann", "j-bob"}
    await UserForgetter(engine).forget("ann")  # while the batch is embedded
    await LongTermMemory(store, embedder).form_many(
        list(claim.turns.values()), claim.preceding, claim=claim
    )
    async with engine.connect() as conn:
        users = (await conn.execute(sa.select(memories.c.user_id))).scalars().all()
    assert users == ["bob"]
    assert await _outbox(engine) == {}


async def test_a_batch_part_of_which_another_worker_leased_again_writes_only_its_own(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """Jobs 1 and 2 say the same thing (2 merges into 1's new memory in the batch). The
    lease runs out and another worker takes job 2 alone: the first worker's write forms
    job 1 without job 2's turn, and leaves job 2 to the other worker."""
    text = "my locker code is nine one four two"
    await _store(engine, "j1", "cy", text)
    await _store(engine, "j2", "cy", text)
    store = PostgresMemoryStore(engine)
    slow = await store.claim_formation(10, lease=60)
    assert slow is not None
    assert slow.job_ids == ("j1", "j2")
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(formation_outbox)
            .where(formation_outbox.c.job_id == "j1")
            .values(claimed_until=sa.func.now() + sa.text("'60s'::interval"))
        )
    await _free_now_of(engine, "j2")
    other = await store.claim_formation(10, lease=60)
    assert other is not None
    assert other.job_ids == ("j2",)
    formed = await LongTermMemory(store, embedder).form_many(
        list(slow.turns.values()), slow.preceding, claim=slow
    )
    assert formed == 2  # both embedded; job 2's work is left out of the write
    j1_turn = slow.turns["j1"][0].id
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(memories.c.source_turn_ids))).scalars().all()
    assert rows == [[j1_turn]]
    assert set(await _outbox(engine)) == {"j2"}  # the other worker's, still leased to it
    await LongTermMemory(store, embedder).form_many(
        list(other.turns.values()), other.preceding, claim=other
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(memories.c.source_turn_ids))).scalars().all()
    assert [sorted(turns) for turns in rows] == [sorted([j1_turn, other.turns["j2"][0].id])]


async def _free_now_of(engine: AsyncEngine, job_id: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(formation_outbox)
            .where(formation_outbox.c.job_id == job_id)
            .values(claimed_until=sa.func.now() - sa.text("'1s'::interval"))
        )


async def test_release_failed_is_one_statement_fenced_by_the_claim(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping a job used to take a second statement, unfenced, after the row was freed:
    another replica's claim landing between the two lost its job."""
    (job,) = await store_exchanges(engine, 1)
    store = PostgresMemoryStore(engine)
    stale = await store.claim_formation(10, lease=60)
    assert stale is not None
    await _free_now(engine)
    fresh = await store.claim_formation(10, lease=60)
    assert fresh is not None
    assert fresh.job_ids == (job,)
    assert not await store.release_failed(stale, job, 2)  # not its claim any more
    assert (await _outbox(engine))[job][0] == 2  # a claim counts an attempt
    statements = CountingStatements(engine, monkeypatch)
    assert await store.release_failed(fresh, job, 2)  # its second attempt: dropped
    assert statements.count == 1
    assert await _outbox(engine) == {}
