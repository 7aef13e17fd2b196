"""ForgetPersonality on real Postgres: everything memory keeps of one personality goes in one
transaction (every user's turns and the channel's own, every memory and the shared lore with
their links, memory modes, formation and fact outbox rows, memory uses), another
personality's rows stay, and work in flight for it writes nothing back: a formation batch
leased before, one writing at that moment (waited for, then its memories forgotten too), a
fact extraction, a reflection.

The forget leaves a tombstone, so nothing is stored for the personality afterwards: an
answer another gateway replica generated with the personality still in its catalog cache
(StoreExchange, waiting for a forget in progress or arriving after it), its lore or a
user's memory of it (AddMemory, formation's write), a memory mode toward it.

The forget is used without the server where a background worker would race the test's own
claims; the last test goes through gRPC with mTLS, as gateway calls it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import (
    Exchange,
    MemoryMode,
    MemoryScope,
    NewTurn,
    StoredExchange,
)
from tzurot.memory.embedding import Embedder
from tzurot.memory.fact_store import PostgresFactStore
from tzurot.memory.facts import Facts, NewFact
from tzurot.memory.forget_personality import PersonalityForgetter
from tzurot.memory.forming import LeaseLost
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.outbox import FormedRow
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import (
    fact_outbox,
    formation_outbox,
    memories,
    memory_modes,
    memory_uses,
    turns,
    waypoints,
)
from tzurot.memory.tombstones import Forgotten
from tzurot.runtime.errors import InvalidArgument, from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

from .conftest import Connect, lock_waiters, reflect_forgetting_meanwhile

pytestmark = pytest.mark.component

WREN = "wren"  # the personality deleted
LILITH = "lilith"  # another, whose rows stay
ALICE = "user-alice"
BOB = "user-bob"


async def store(
    engine: AsyncEngine, job_id: str, personality: str, user_id: str, said: str, **extra: Any
) -> None:
    await PostgresTurnStore(engine).store_exchange(
        Exchange(
            job_id,
            "chan-1",
            personality,
            user_id,
            (NewTurn("user", said, author_name=user_id), NewTurn("assistant", "noted")),
            **extra,
        )
    )


async def rows_of(engine: AsyncEngine, personality: str) -> dict[str, int]:
    """How many rows of each table are the personality's (by its id, or by its jobs)."""
    jobs = [f"{personality}-{job}" for job in ("alice", "bob", "greeting")]
    its_memories = sa.select(memories.c.id).where(memories.c.personality_id == personality)
    counts = {
        "turns": sa.select(sa.func.count()).where(turns.c.personality_id == personality),
        "memories": sa.select(sa.func.count()).where(memories.c.personality_id == personality),
        "waypoints": sa.select(sa.func.count()).where(waypoints.c.src_id.in_(its_memories)),
        "memory_modes": sa.select(sa.func.count()).where(
            memory_modes.c.personality_id == personality
        ),
        "formation_outbox": sa.select(sa.func.count()).where(formation_outbox.c.job_id.in_(jobs)),
        "fact_outbox": sa.select(sa.func.count()).where(
            fact_outbox.c.personality_id == personality
        ),
        "memory_uses": sa.select(sa.func.count()).where(memory_uses.c.job_id.in_(jobs)),
    }
    async with engine.connect() as conn:
        return {name: int(await conn.scalar(stmt) or 0) for name, stmt in counts.items()}


async def seed(engine: AsyncEngine, embedder: Embedder, personality: str) -> None:
    """Alice's and Bob's exchanges (one waiting for facts, one that used a memory), a greeting
    (the channel's: no user), Alice's memory and the shared lore, linked, and a memory mode."""
    await store(
        engine,
        f"{personality}-alice",
        personality,
        ALICE,
        "I keep my spare key under the blue flowerpot",
        extract_facts=True,
        used_memory_ids=(str(uuid.uuid4()),),
    )
    await store(engine, f"{personality}-bob", personality, BOB, "My dog is called Biscuit")
    await PostgresTurnStore(engine).store_exchange(
        Exchange(
            f"{personality}-greeting",
            "chan-1",
            personality,
            "",
            (NewTurn("assistant", "Welcome, travellers"),),
            imported=True,
        )
    )
    memory_store = PostgresMemoryStore(engine)
    vector, lore_vector = await embedder.embed(["the blue flowerpot", "the old lighthouse"])
    hers = await memory_store.insert(
        MemoryScope(personality, ALICE),
        text="Alice keeps a key under the blue flowerpot",
        embedding=vector,
        sector="semantic",
        salience=0.6,
    )
    lore = await memory_store.insert(
        MemoryScope(personality, ""),
        text="The old lighthouse is haunted",
        embedding=lore_vector,
        sector="semantic",
        salience=0.6,
    )
    await memory_store.link([(hers.id, lore.id)], 0.5)
    fresh = MemoryMode(fresh_since=datetime.now(UTC) - timedelta(days=1))
    await memory_store.set_mode(personality, ALICE, fresh)


SEEDED = {
    "turns": 5,
    "memories": 2,
    "waypoints": 2,
    "memory_modes": 1,
    "formation_outbox": 2,
    "fact_outbox": 1,
    "memory_uses": 1,
}


async def test_forget_deletes_everything_of_the_personality_and_nothing_else(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    for personality in (WREN, LILITH):
        await seed(engine, embedder, personality)
    assert await rows_of(engine, WREN) == SEEDED
    forgetter = PersonalityForgetter(engine)

    forgotten = await forgetter.forget(WREN)

    assert (forgotten.deleted_turns, forgotten.deleted_memories) == (5, 2)
    assert set((await rows_of(engine, WREN)).values()) == {0}
    assert await rows_of(engine, LILITH) == SEEDED
    again = await forgetter.forget(WREN)  # a retry after a failure further on
    assert (again.deleted_turns, again.deleted_memories) == (0, 0)
    assert await rows_of(engine, LILITH) == SEEDED
    with pytest.raises(InvalidArgument) as missing:
        await forgetter.forget("")
    assert missing.value.field == "personality_id"


async def test_a_formation_batch_leased_before_the_forget_writes_nothing(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    await store(engine, "wren-alice", WREN, ALICE, "My sister Dana lives in Lisbon with two cats")
    memory_store = PostgresMemoryStore(engine)
    claim = await memory_store.claim_formation(10, lease=60)
    assert claim is not None
    assert claim.job_ids == ("wren-alice",)

    await PersonalityForgetter(engine).forget(WREN)  # while the batch is being embedded

    with pytest.raises(LeaseLost):
        await LongTermMemory(memory_store, embedder).form_many(
            list(claim.turns.values()), claim.preceding, claim=claim
        )
    assert set((await rows_of(engine, WREN)).values()) == {0}


async def test_a_formation_batch_writing_during_the_forget_is_waited_for_then_forgotten(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """A batch's write (`write_formed`: its outbox rows locked, its memories inserted, the
    rows deleted, one transaction) caught half way: the forget waits for it, and then sees
    and deletes what it wrote."""
    await store(engine, "wren-alice", WREN, ALICE, "My sister Dana lives in Lisbon with two cats")
    (vector,) = await embedder.embed(["Dana lives in Lisbon"])
    mine = formation_outbox.c.job_id == "wren-alice"
    async with engine.connect() as writer:
        await writer.begin()
        await writer.execute(sa.select(formation_outbox.c.job_id).where(mine).with_for_update())
        await writer.execute(
            memories.insert().values(
                personality_id=WREN, user_id=ALICE, text="Dana lives in Lisbon",
                embedding=vector, sector="semantic", salience=0.5,
            )
        )  # fmt: skip
        forgetting = asyncio.create_task(PersonalityForgetter(engine).forget(WREN))
        assert await lock_waiters(engine, 1, unless=forgetting) == 1
        await writer.execute(sa.delete(formation_outbox).where(mine))
        await writer.commit()
    forgotten = await asyncio.wait_for(forgetting, 30)

    assert (forgotten.deleted_turns, forgotten.deleted_memories) == (2, 1)
    assert set((await rows_of(engine, WREN)).values()) == {0}


async def test_facts_extracted_before_the_forget_are_not_stored_after_it(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    await store(
        engine, "wren-alice", WREN, ALICE, "I moved to Berlin last week", extract_facts=True
    )
    facts = Facts(PostgresFactStore(engine), PostgresTurnStore(engine), embedder)
    (batch,) = await facts.claim()
    assert batch.scope == MemoryScope(WREN, ALICE)

    await PersonalityForgetter(engine).forget(WREN)  # while gateway has the LLM extract them

    stored, superseded = await facts.store(
        WREN, ALICE, batch.job_ids, [NewFact("Alice lives in Berlin")]
    )
    assert (stored, superseded) == ([], 0)
    assert set((await rows_of(engine, WREN)).values()) == {0}


def answer(job_id: str, personality: str, user_id: str = ALICE) -> Exchange:
    """An exchange as gateway confirms it (the channel's own when `user_id` is '')."""
    said = (NewTurn("user", "hello again", author_name=user_id),) if user_id else ()
    return Exchange(
        job_id, "chan-1", personality, user_id, (*said, NewTurn("assistant", "well met"))
    )


async def test_an_answer_confirmed_after_the_forget_stores_nothing(engine: AsyncEngine) -> None:
    """Another gateway replica still had Wren in its catalog cache: it generated an answer
    and confirmed it after memory forgot Wren. The StoreExchange succeeds (the job is then
    delivered, nothing to retry) and stores nothing, a user's exchange or the channel's own
    turn alike; Lilith's are stored as ever."""
    await PersonalityForgetter(engine).forget(WREN)
    turn_store = PostgresTurnStore(engine)

    for exchange in (answer("wren-alice", WREN), answer("wren-greeting", WREN, user_id="")):
        assert await turn_store.store_exchange(exchange) == StoredExchange([], created=False)

    assert set((await rows_of(engine, WREN)).values()) == {0}
    assert (await turn_store.store_exchange(answer("lilith-alice", LILITH))).created


async def test_an_answer_arriving_while_the_forget_deletes_stores_nothing_at_once(
    engine: AsyncEngine,
) -> None:
    """The tombstone commits before the deletes (a scan of `turns` for a personality): a
    StoreExchange arriving while they run (here they wait for a row an edit holds) does not
    wait for them, and stores nothing."""
    await store(engine, "wren-bob", WREN, BOB, "My dog is called Biscuit")
    async with engine.connect() as editing:
        await editing.begin()
        await editing.execute(
            sa.select(turns.c.id).where(turns.c.personality_id == WREN).with_for_update()
        )
        forgetting = asyncio.create_task(PersonalityForgetter(engine).forget(WREN))
        assert await lock_waiters(engine, 1, unless=forgetting) == 1
        late = await asyncio.wait_for(
            PostgresTurnStore(engine).store_exchange(answer("wren-alice", WREN)), 30
        )
        assert not forgetting.done()  # the answer did not wait for the deletes
        await editing.commit()
    await asyncio.wait_for(forgetting, 30)

    assert late == StoredExchange([], created=False)
    assert set((await rows_of(engine, WREN)).values()) == {0}


async def test_no_memory_or_mode_is_stored_for_a_forgotten_personality(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    memory_store = PostgresMemoryStore(engine)
    longterm = LongTermMemory(memory_store, embedder)
    await PersonalityForgetter(engine).forget(WREN)

    for user_id in (ALICE, ""):  # hers, and the shared lore (an inference skill, an import)
        with pytest.raises(Forgotten):
            await longterm.add(WREN, user_id, "The old lighthouse is haunted")
    with pytest.raises(Forgotten):  # gateway's SetIncognito read the personality before
        await longterm.set_mode(WREN, ALICE, datetime.now(UTC) + timedelta(hours=1), None)
    (vector,) = await embedder.embed(["Alice keeps a key under the blue flowerpot"])
    row = FormedRow(
        id=str(uuid.uuid4()), scope=MemoryScope(WREN, ALICE), text="Alice keeps a key",
        vector=vector, sector="semantic", salience=0.5, source_turn_ids=("t1",), created_at=None,
    )  # fmt: skip
    assert await memory_store.write_formed([row], {}, [], 0.5)  # formation, without a claim

    assert set((await rows_of(engine, WREN)).values()) == {0}
    assert (await longterm.add(LILITH, "", "The harbour freezes in winter")).memory


async def test_a_reflection_of_a_forgotten_personalitys_memories_is_not_kept(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    async def forget(scope: MemoryScope) -> object:
        return await PersonalityForgetter(engine).forget(scope.personality_id)

    scope = MemoryScope(WREN, ALICE)
    assert await reflect_forgetting_meanwhile(engine, embedder, scope, forget) == 0

    assert (await rows_of(engine, WREN))["memories"] == 0


async def test_forget_personality_over_grpc_for_gateway_only(connect: Connect) -> None:
    gateway = connect("gateway")
    for personality, job in ((WREN, "job-wren"), (LILITH, "job-lilith")):
        await gateway.StoreExchange(
            mem.StoreExchangeRequest(
                job_id=job, channel_id="chan-1", personality_id=personality, user_id=ALICE,
                imported=True,  # no formation: the counts are the test's own
                turns=[
                    common.Turn(role=common.ROLE_USER, content="hello there"),
                    common.Turn(role=common.ROLE_ASSISTANT, content="well met"),
                ],
            )
        )  # fmt: skip
        for user in (ALICE, ""):  # hers, and the shared lore
            await gateway.AddMemory(
                mem.AddMemoryRequest(
                    memory=common.Memory(
                        personality_id=personality, user_id=user, text=f"{user} likes tea"
                    )
                )
            )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await connect("inference").ForgetPersonality(
            mem.ForgetPersonalityRequest(personality_id=WREN)
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    forgotten = await gateway.ForgetPersonality(mem.ForgetPersonalityRequest(personality_id=WREN))
    again = await gateway.ForgetPersonality(mem.ForgetPersonalityRequest(personality_id=WREN))

    assert (forgotten.deleted_turns, forgotten.deleted_memories) == (2, 2)
    assert (again.deleted_turns, again.deleted_memories) == (0, 0)
    history = mem.GetHistoryRequest(channel_id="chan-1", personality_id=WREN)
    assert list((await gateway.GetHistory(history)).turns) == []
    kept = mem.GetHistoryRequest(channel_id="chan-1", personality_id=LILITH)
    assert [t.content for t in (await gateway.GetHistory(kept)).turns] == [
        "hello there",
        "well met",
    ]
    for personality, left in ((WREN, 0), (LILITH, 1)):
        for user in (ALICE, ""):
            counted = await gateway.CountMemories(
                mem.CountMemoriesRequest(personality_id=personality, user_id=user)
            )
            assert counted.total == left, (personality, user)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await gateway.ForgetPersonality(mem.ForgetPersonalityRequest())
    error = from_rpc_error(missing.value)
    assert isinstance(error, InvalidArgument)
    assert error.field == "personality_id"
