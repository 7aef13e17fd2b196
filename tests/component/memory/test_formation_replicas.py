"""The formation worker on several replicas: outbox rows are leased (picked with
`FOR UPDATE SKIP LOCKED`), so two workers never form one exchange, a worker whose lease
was taken over writes nothing, and a failing job is retried once per pass. A batch of
many scopes merges and links each scope apart. Real Postgres; each "replica" has its own
engine (connection pool).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.db.engine import create_engine
from tzurot.memory.domain import Exchange, NewTurn, StoredTurn
from tzurot.memory.embedding import Embedder, Vector
from tzurot.memory.formation import Formation
from tzurot.memory.forming import LeaseLost
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.outbox import OutboxClaim
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import formation_outbox, memories
from tzurot.testing.waits import until

pytestmark = pytest.mark.component

PERSONA = "lilith"
USER = "u-replica"


class RecordingMemory(LongTermMemory):
    """Real formation that notes each job it forms and takes a moment, as embedding does."""

    def __init__(self, *args: object, fail_job: str = "", **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.formed: list[str] = []
        self.fail_job = fail_job

    async def form_many(
        self,
        exchanges: Sequence[Sequence[StoredTurn]],
        preceding: Mapping[str, StoredTurn] | None = None,
        *,
        claim: OutboxClaim | None = None,
        after: asyncio.Future[Any] | None = None,
    ) -> int:
        jobs = [turns[0].job_id for turns in exchanges if turns]
        if self.fail_job in jobs:
            raise RuntimeError("embedder down")
        self.formed += jobs
        await asyncio.sleep(0.02)
        return await super().form_many(exchanges, preceding, claim=claim, after=after)


async def store_exchanges(engine: AsyncEngine, count: int) -> list[str]:
    turns = PostgresTurnStore(engine)
    jobs = [f"job-{n:02d}" for n in range(count)]
    for n, job_id in enumerate(jobs):
        text = f"remember that locker {n} holds the blue umbrella number {n}"
        await turns.store_exchange(
            Exchange(job_id, "chan-r", PERSONA, USER, (NewTurn("user", text),))
        )
    return jobs


def replica(
    engine: AsyncEngine, embedder: Embedder, batch: int = 4, **kwargs: str
) -> tuple[Formation, RecordingMemory]:
    store = PostgresMemoryStore(engine)
    longterm = RecordingMemory(store, embedder, **kwargs)
    return Formation(store, longterm, batch=batch), longterm


async def test_two_replicas_never_form_the_same_exchange(
    engine: AsyncEngine, memory_url: str, embedder: Embedder
) -> None:
    jobs = await store_exchanges(engine, 16)
    other_engine = create_engine(memory_url)
    try:
        (first, first_memory), (second, second_memory) = (
            replica(engine, embedder),
            replica(other_engine, embedder),
        )
        done = await asyncio.gather(first.drain(), second.drain())
    finally:
        await other_engine.dispose()
    formed = first_memory.formed + second_memory.formed
    assert sorted(formed) == jobs  # every exchange, each exactly once
    assert first_memory.formed
    assert second_memory.formed  # both replicas took part
    assert sum(done) == len(jobs)
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(formation_outbox)) == 0
        assert await conn.scalar(sa.select(sa.func.count()).select_from(memories)) == len(jobs)


async def test_a_failing_job_is_tried_once_per_pass_then_dropped(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """Here retried at once (`retry_seconds=0`); test_formation_failures.py has the waits
    between attempts."""
    jobs = await store_exchanges(engine, 3)
    store = PostgresMemoryStore(engine)
    memory = RecordingMemory(store, embedder, fail_job=jobs[1])
    worker = Formation(store, memory, batch=4, retry_seconds=0)
    assert await worker.drain() == 2
    assert memory.formed == [jobs[0], jobs[2]]
    attempts = sa.select(formation_outbox.c.job_id, formation_outbox.c.attempts)
    async with engine.connect() as conn:
        assert (await conn.execute(attempts)).all() == [(jobs[1], 1)]
    for _pass in range(4):  # max_attempts is 5
        assert await worker.drain() == 0
    async with engine.connect() as conn:
        assert (await conn.execute(attempts)).all() == []


class CountingEmbedder:
    """The real embedder, counting its calls."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.calls: list[int] = []

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.calls.append(len(texts))
        return await self.inner.embed(texts)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_batch_is_embedded_in_one_call_and_formed_once(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    jobs = await store_exchanges(engine, 10)
    counting = CountingEmbedder(embedder)
    store = PostgresMemoryStore(engine)
    turns = PostgresTurnStore(engine)
    worker = Formation(store, LongTermMemory(store, counting), batch=64)
    assert await worker.drain() == len(jobs)
    assert counting.calls == [len(jobs)]  # one call for the whole batch
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(memories)) == len(jobs)
    # Formed again (a retried outbox row): nothing new, and nothing embedded.
    by_job = await turns.jobs_turns(jobs)
    assert await LongTermMemory(store, counting).form_many(list(by_job.values())) == 0
    assert counting.calls == [len(jobs)]


async def _store(engine: AsyncEngine, job_id: str, user: str, text: str) -> None:
    await PostgresTurnStore(engine).store_exchange(
        Exchange(job_id, f"chan-{user}", PERSONA, user, (NewTurn("user", text),))
    )


async def _memories_of(engine: AsyncEngine, user: str) -> list[tuple[str, list[str]]]:
    stmt = sa.select(memories.c.text, memories.c.source_turn_ids).where(memories.c.user_id == user)
    async with engine.connect() as conn:
        rows = (await conn.execute(stmt.order_by(memories.c.text))).all()
    return [(text, sorted(turn_ids)) for text, turn_ids in rows]


async def _turn_ids(engine: AsyncEngine, *jobs: str) -> list[str]:
    stored = await PostgresTurnStore(engine).jobs_turns(list(jobs))
    return sorted(turn.id for job in jobs for turn in stored[job])


class CountingStatements:
    """Counts the SQL statements an engine sends (through SQLAlchemy or tzurot.db.direct)."""

    def __init__(self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        sa.event.listen(engine.sync_engine, "before_cursor_execute", self._seen)
        run = direct._run

        async def counted(*args: Any) -> Any:
            self.count += 1
            return await run(*args)

        monkeypatch.setattr(direct, "_run", counted)

    def _seen(self, *_args: object) -> None:
        self.count += 1


async def test_a_batch_of_many_scopes_merges_each_scope_apart_in_three_statements(
    engine: AsyncEngine, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two users say the same things in one batch: each user's memories merge and link
    only with their own, stored or new in the batch; the batch takes three statements, and
    one more to count a scope not counted in the last ten minutes (Bob's)."""
    store = PostgresMemoryStore(engine)
    worker = Formation(store, LongTermMemory(store, embedder), batch=64)
    tea, stamps = "i drink green tea every single morning", "i collect vintage stamps from japan"
    await _store(engine, "old-ann", "ann", tea)  # a stored memory to merge into, Ann's only
    assert await worker.drain() == 1
    for n, (user, text) in enumerate(
        [("ann", tea), ("bob", tea), ("ann", stamps), ("bob", stamps), ("bob", stamps)]
    ):
        await _store(engine, f"new-{n}", user, text)
    statements = CountingStatements(engine, monkeypatch)
    assert await worker.drain() == 5
    # claim and reads, Bob's scope counted (Ann's was, by the first drain), neighbours,
    # every write
    assert statements.count == 4
    assert await _memories_of(engine, "ann") == [
        (f"user: {stamps}", await _turn_ids(engine, "new-2")),
        (f"user: {tea}", await _turn_ids(engine, "old-ann", "new-0")),  # merged into the stored
    ]
    assert await _memories_of(engine, "bob") == [
        (f"user: {stamps}", await _turn_ids(engine, "new-3", "new-4")),  # merged in the batch
        (f"user: {tea}", await _turn_ids(engine, "new-1")),  # not into Ann's
    ]
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(formation_outbox)) == 0
    await _store(engine, "later-ann", "ann", "i walk my dog along the river after work")
    await _store(engine, "later-bob", "bob", "i bake sourdough bread on sundays")
    statements = CountingStatements(engine, monkeypatch)
    assert await worker.drain() == 2
    assert statements.count == 3  # both scopes counted lately: claim, neighbours, writes


async def test_a_worker_whose_lease_was_taken_over_writes_nothing(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """A worker slower than its lease: another worker leases the jobs and forms them;
    the first one's writes (and its end of the jobs) are refused as a whole."""
    jobs = await store_exchanges(engine, 3)
    store = PostgresMemoryStore(engine)
    slow = await store.claim_formation(10, lease=60)
    assert slow is not None
    assert slow.job_ids == tuple(jobs)
    assert await store.claim_formation(10, lease=60) is None  # leased: no one else takes them
    async with engine.begin() as conn:  # the lease runs out
        await conn.execute(
            sa.update(formation_outbox).values(
                claimed_until=sa.func.now() - sa.text("'1s'::interval")
            )
        )
    other = Formation(store, LongTermMemory(store, embedder))
    assert await other.drain() == 3
    with pytest.raises(LeaseLost):
        await LongTermMemory(store, embedder).form_many(
            list(slow.turns.values()), slow.preceding, claim=slow
        )
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(memories)) == 3


class SlowWrites(PostgresMemoryStore):
    """Postgres taking its time over each batch's writes; `writing` set once one began."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writing = asyncio.Event()

    async def write_formed(self, *args: Any, **kwargs: Any) -> bool:
        self.writing.set()
        await asyncio.sleep(0.3)
        return await super().write_formed(*args, **kwargs)


async def test_a_batch_merges_into_what_the_batch_before_it_formed(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """Batches are pipelined (the next one embedded while the previous one is written),
    yet each reads its neighbours after the previous write: one memory, not one a batch."""
    text = "my locker code is nine one four two"
    jobs = [f"same-{n}" for n in range(7)]
    for job_id in jobs:
        await _store(engine, job_id, "cy", text)
    store = SlowWrites(engine)
    assert await Formation(store, LongTermMemory(store, embedder), batch=2).drain() == 7
    assert await _memories_of(engine, "cy") == [(f"user: {text}", await _turn_ids(engine, *jobs))]


async def test_stopping_mid_drain_leaves_no_batch_running(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """A drain cancelled (the service stopping) while two batches are in flight cancels
    both: nothing keeps writing behind the stopped worker."""
    for n in range(6):
        await _store(engine, f"stop-{n}", "dee", f"remember the blue umbrella number {n}")
    store = SlowWrites(engine)
    drain = asyncio.create_task(Formation(store, LongTermMemory(store, embedder), batch=2).drain())
    await asyncio.wait_for(store.writing.wait(), 30)  # the second batch embedded or waiting
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain
    batches = [t for t in asyncio.all_tasks() if "_form_batch" in repr(t.get_coro())]
    assert batches == []


async def test_a_wake_up_gathers_the_exchanges_stored_meanwhile_into_one_batch(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """The running worker, woken by an exchange, waits `gather_seconds` for more: the
    exchanges stored meanwhile are embedded in the same call (the first, stored before the
    worker started, formed alone)."""
    counting = CountingEmbedder(embedder)
    store = PostgresMemoryStore(engine)
    worker = Formation(store, LongTermMemory(store, counting), gather_seconds=3.0)

    async def formed(count: int) -> None:
        for _ in range(600):  # 30 s
            if await _count(engine) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} memories were not formed")

    await _store(engine, "gather-0", USER, "remember that the kettle is in the left cupboard")
    worker.start()
    try:
        await formed(1)
        for n, thing in enumerate(("the spare key is under the blue pot", "the bike is red")):
            await _store(engine, f"gather-{n + 1}", USER, f"remember that {thing}")
            worker.kick()
            await asyncio.sleep(0.5)  # without the gathering, the first would form alone
        await formed(3)
    finally:
        await worker.stop()
    assert counting.calls == [1, 2]


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(memories)) or 0)


class GatedMemory(LongTermMemory):
    """Real formation that waits at a gate before forming each batch (a long embedding)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.gate = asyncio.Event()
        self.reached = asyncio.Event()
        self.entered: list[str] = []

    async def form_many(
        self,
        exchanges: Sequence[Sequence[StoredTurn]],
        preceding: Mapping[str, StoredTurn] | None = None,
        *,
        claim: OutboxClaim | None = None,
        after: asyncio.Future[Any] | None = None,
    ) -> int:
        self.entered += [turns[0].job_id for turns in exchanges if turns]
        self.reached.set()
        await self.gate.wait()
        return await super().form_many(exchanges, preceding, claim=claim, after=after)


async def _outbox(engine: AsyncEngine) -> dict[str, bool]:
    """Each outbox row's job and whether it is leased now."""
    leased = sa.func.coalesce(formation_outbox.c.claimed_until > sa.func.now(), False)
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(formation_outbox.c.job_id, leased))).all()
    return {job_id: bool(is_leased) for job_id, is_leased in rows}


async def test_a_stopped_worker_writes_its_batches_in_flight_and_claims_no_more(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """A scale-down or a rolling update: the worker finishes what it leased, so no job
    waits for a lease to run out, and leaves the rest free for the other replicas."""
    jobs = await store_exchanges(engine, 8)
    store = PostgresMemoryStore(engine)
    longterm = GatedMemory(store, embedder)
    worker = Formation(store, longterm, batch=2)
    worker.start()
    await asyncio.wait_for(longterm.reached.wait(), 30)
    stopping = asyncio.create_task(worker.stop(grace=30))
    await asyncio.sleep(0.2)
    assert not stopping.done()  # waiting for the batch in flight
    longterm.gate.set()
    await asyncio.wait_for(stopping, 30)
    formed = longterm.entered
    assert 2 <= len(formed) < len(jobs)  # a batch or two of two, not the whole outbox
    assert await _count(engine) == len(formed)
    assert await _outbox(engine) == {job: False for job in jobs if job not in formed}


async def test_a_stop_past_its_timeout_cancels_the_batch_and_its_jobs_wait_for_the_lease(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    jobs = await store_exchanges(engine, 4)
    store = PostgresMemoryStore(engine)
    longterm = GatedMemory(store, embedder)
    worker = Formation(store, longterm, batch=2)
    worker.start()
    await asyncio.wait_for(longterm.reached.wait(), 30)
    await asyncio.wait_for(worker.stop(grace=0.2), 10)  # the gate never opens
    assert await _count(engine) == 0
    leased = await _outbox(engine)
    assert set(leased) == set(jobs)
    assert {job for job, is_leased in leased.items() if is_leased} == set(longterm.entered)
    batches = [t for t in asyncio.all_tasks() if "_form_batch" in repr(t.get_coro())]
    assert batches == []


async def test_a_cancelled_stop_leaves_no_worker_behind(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    await store_exchanges(engine, 2)
    store = PostgresMemoryStore(engine)
    longterm = GatedMemory(store, embedder)
    worker = Formation(store, longterm, batch=2)
    worker.start()
    await asyncio.wait_for(longterm.reached.wait(), 30)
    stopping = asyncio.create_task(worker.stop(grace=30))
    await asyncio.sleep(0.1)
    stopping.cancel()  # a second signal, an outer deadline
    with pytest.raises(asyncio.CancelledError):
        await stopping
    # Cancelled, the worker ends within a few turns of the loop (on a loaded machine later
    # than a fixed 0.1 s); left behind, it would wait at the gate for good.
    await until(
        lambda: not [t for t in asyncio.all_tasks() if t.get_name() == "memory-formation"],
        "the worker ended with its cancelled stop",
        within=5,
    )
