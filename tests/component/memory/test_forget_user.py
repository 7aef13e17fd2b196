"""ForgetUser against work already in flight for that user, on real Postgres: a formation
batch, a fact extraction and a consolidation pass that read the user's data before the
forget store nothing after it, and nothing that waits on the user's exchanges (formation and
fact outbox rows, memory uses) survives it. Another user's rows are untouched.

The forget is what MemoryService.ForgetUser runs (History then LongTermMemory); the service
objects are used without the server so no background worker races the test's own claims.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import Exchange, MemoryScope, NewTurn, StoredMemory
from tzurot.memory.embedding import Embedder
from tzurot.memory.fact_store import PostgresFactStore
from tzurot.memory.facts import Facts, NewFact
from tzurot.memory.longterm import LeaseLost, LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import fact_outbox, formation_outbox, memories, memory_uses, turns

pytestmark = pytest.mark.component

PERSONA = "lilith"
ALICE = "user-alice"
BOB = "user-bob"


async def forget(engine: AsyncEngine, embedder: Embedder, user_id: str) -> None:
    """What MemoryService.ForgetUser does."""
    await History(PostgresTurnStore(engine)).forget_user(user_id)
    await LongTermMemory(PostgresMemoryStore(engine), embedder).forget_user(user_id)


async def store(engine: AsyncEngine, job_id: str, user_id: str, said: str, **extra: object) -> None:
    await PostgresTurnStore(engine).store_exchange(
        Exchange(
            job_id,
            "chan-1",
            PERSONA,
            user_id,
            (NewTurn("user", said, author_name=user_id), NewTurn("assistant", "noted")),
            **extra,  # type: ignore[arg-type]
        )
    )


async def rows_of(engine: AsyncEngine, user_id: str) -> dict[str, int]:
    """How many rows of each table are the user's (by user id, or by their jobs)."""
    jobs = {"job-alice": ALICE, "job-bob": BOB}
    theirs = [job for job, user in jobs.items() if user == user_id]
    counts = {
        "turns": sa.select(sa.func.count()).where(turns.c.user_id == user_id),
        "memories": sa.select(sa.func.count()).where(memories.c.user_id == user_id),
        "formation_outbox": sa.select(sa.func.count()).where(formation_outbox.c.job_id.in_(theirs)),
        "fact_outbox": sa.select(sa.func.count()).where(fact_outbox.c.user_id == user_id),
        "memory_uses": sa.select(sa.func.count()).where(memory_uses.c.job_id.in_(theirs)),
    }
    async with engine.connect() as conn:
        return {name: int(await conn.scalar(stmt) or 0) for name, stmt in counts.items()}


async def test_forget_leaves_nothing_waiting_on_the_users_exchanges(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    used = str(uuid.uuid4())
    for job, user in (("job-alice", ALICE), ("job-bob", BOB)):
        await store(
            engine,
            job,
            user,
            "I keep my spare key under the blue flowerpot",
            extract_facts=True,
            used_memory_ids=(used,),
        )
    assert await rows_of(engine, ALICE) == {
        "turns": 2,
        "memories": 0,
        "formation_outbox": 1,
        "fact_outbox": 1,
        "memory_uses": 1,
    }

    await forget(engine, embedder, ALICE)

    assert set((await rows_of(engine, ALICE)).values()) == {0}
    assert await rows_of(engine, BOB) == {
        "turns": 2,
        "memories": 0,
        "formation_outbox": 1,
        "fact_outbox": 1,
        "memory_uses": 1,
    }


async def test_a_formation_batch_leased_before_the_forget_writes_nothing(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    await store(engine, "job-alice", ALICE, "My sister Dana lives in Lisbon with two cats")
    memory_store = PostgresMemoryStore(engine)
    claim = await memory_store.claim_formation(10, lease=60)
    assert claim is not None
    assert claim.job_ids == ("job-alice",)

    await forget(engine, embedder, ALICE)  # while the batch is being embedded

    with pytest.raises(LeaseLost):
        await LongTermMemory(memory_store, embedder).form_many(
            list(claim.turns.values()), claim.preceding, claim=claim
        )
    assert set((await rows_of(engine, ALICE)).values()) == {0}


async def test_facts_extracted_before_the_forget_are_not_stored_after_it(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    await store(engine, "job-alice", ALICE, "I moved to Berlin last week", extract_facts=True)
    facts = Facts(PostgresFactStore(engine), PostgresTurnStore(engine), embedder)
    (batch,) = await facts.claim()
    assert batch.scope == MemoryScope(PERSONA, ALICE)

    await forget(engine, embedder, ALICE)  # while gateway has the LLM extract them

    stored, superseded = await facts.store(
        PERSONA, ALICE, batch.job_ids, [NewFact("Alice lives in Berlin")]
    )
    assert (stored, superseded) == ([], 0)
    assert set((await rows_of(engine, ALICE)).values()) == {0}


class ForgetsDuringReflection(PostgresMemoryStore):
    """The user is forgotten after consolidation read their episodes, before it wrote the
    summary of them."""

    def __init__(self, engine: AsyncEngine, embedder: Embedder) -> None:
        super().__init__(engine)
        self._engine_for_forget = engine
        self._embedder = embedder

    async def insert(self, scope: MemoryScope, **fields: Any) -> StoredMemory:
        if fields.get("sector") == "reflective":
            await forget(self._engine_for_forget, self._embedder, scope.user_id)
        return await super().insert(scope, **fields)


async def test_a_reflection_of_a_forgotten_users_memories_is_not_kept(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    memory_store = ForgetsDuringReflection(engine, embedder)
    (close,) = await embedder.embed(["Yesterday I went to the climbing gym with Sam."])
    for n in range(20):
        await memory_store.insert(
            MemoryScope(PERSONA, ALICE),
            text=f"Yesterday I went to the climbing gym with Sam, visit {n}.",
            embedding=close,
            sector="episodic",
            salience=0.5,
            source_turn_ids=[f"t{n}"],
        )

    assert await LongTermMemory(memory_store, embedder).reflect() == 0

    assert (await rows_of(engine, ALICE))["memories"] == 0
