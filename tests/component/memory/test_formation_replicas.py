"""The formation worker on several replicas: outbox rows are claimed with
`FOR UPDATE SKIP LOCKED`, so two workers never form one exchange, and a failing job is
retried once per pass. Real Postgres; each "replica" has its own engine (connection pool).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.memory.domain import Exchange, NewTurn, StoredTurn
from tzurot.memory.embedding import Embedder, Vector
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import formation_outbox, memories

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
    ) -> int:
        jobs = [turns[0].job_id for turns in exchanges if turns]
        if self.fail_job in jobs:
            raise RuntimeError("embedder down")
        self.formed += jobs
        await asyncio.sleep(0.02)
        return await super().form_many(exchanges, preceding)


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
    return Formation(store, PostgresTurnStore(engine), longterm, batch=batch), longterm


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
    jobs = await store_exchanges(engine, 3)
    worker, memory = replica(engine, embedder, fail_job=jobs[1])
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
    worker = Formation(store, turns, LongTermMemory(store, counting), batch=64)
    assert await worker.drain() == len(jobs)
    assert counting.calls == [len(jobs)]  # one call for the whole batch
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(memories)) == len(jobs)
    # Formed again (a retried outbox row): nothing new, and nothing embedded.
    by_job = await turns.jobs_turns(jobs)
    assert await LongTermMemory(store, counting).form_many(list(by_job.values())) == 0
    assert counting.calls == [len(jobs)]
