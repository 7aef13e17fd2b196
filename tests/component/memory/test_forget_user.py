"""ForgetUser against work already in flight for that user, on real Postgres: a formation
batch, a fact extraction and a consolidation pass that read the user's data before the
forget store nothing after it, and nothing that waits on the user's exchanges (formation and
fact outbox rows, memory uses) survives it. Another user's rows are untouched.

The forget also leaves a tombstone (tombstones.py), so every write path refuses the user
afterwards, however late it comes: StoreExchange (a confirmation whose job gateway read
before the deletion), formation's write, StoreFacts, AddMemory (in the user's scope or on
their behalf in the lore), SetMemoryMode. A StoreExchange racing the forget either waits for
it and stores nothing, or is waited for and forgotten with the rest.

The forget is what MemoryService.ForgetUser runs (UserForgetter); the service objects are
used without the server so no background worker races the test's own claims (the last test
goes through gRPC, as gateway calls it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

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
from tzurot.memory.forget_user import UserForgetter
from tzurot.memory.forming import LeaseLost
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.outbox import FormedRow
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import (
    fact_outbox,
    forgotten,
    formation_outbox,
    memories,
    memory_modes,
    memory_uses,
    turns,
    waypoints,
)
from tzurot.memory.tombstones import Forgotten
from tzurot.runtime.errors import FailedPrecondition, from_rpc_error
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem

from .conftest import Connect, lock_waiters, reflect_forgetting_meanwhile

pytestmark = pytest.mark.component

PERSONA = "lilith"
ALICE = "user-alice"
BOB = "user-bob"
T = TypeVar("T")


async def forget(engine: AsyncEngine, user_id: str) -> None:
    """What MemoryService.ForgetUser does."""
    await UserForgetter(engine).forget(user_id)


def exchange(job_id: str, user_id: str, said: str, **extra: Any) -> Exchange:
    return Exchange(
        job_id,
        "chan-1",
        PERSONA,
        user_id,
        (NewTurn("user", said, author_name=user_id), NewTurn("assistant", "noted")),
        **extra,
    )


async def store(engine: AsyncEngine, job_id: str, user_id: str, said: str, **extra: Any) -> None:
    await PostgresTurnStore(engine).store_exchange(exchange(job_id, user_id, said, **extra))


async def rows_of(engine: AsyncEngine, user_id: str) -> dict[str, int]:
    """How many rows of each table are the user's (by user id, or by their jobs: every job of
    a test is named `job-<user name>-…`)."""
    jobs = f"job-{user_id.removeprefix('user-')}%"
    counts = {
        "turns": sa.select(sa.func.count()).where(turns.c.user_id == user_id),
        "memories": sa.select(sa.func.count()).where(memories.c.user_id == user_id),
        "memory_modes": sa.select(sa.func.count()).where(memory_modes.c.user_id == user_id),
        "formation_outbox": sa.select(sa.func.count()).where(formation_outbox.c.job_id.like(jobs)),
        "fact_outbox": sa.select(sa.func.count()).where(fact_outbox.c.user_id == user_id),
        "memory_uses": sa.select(sa.func.count()).where(memory_uses.c.job_id.like(jobs)),
    }
    async with engine.connect() as conn:
        return {name: int(await conn.scalar(stmt) or 0) for name, stmt in counts.items()}


async def tombstoned(engine: AsyncEngine) -> set[tuple[str, str]]:
    async with engine.connect() as conn:
        return {(row.kind, row.id) for row in await conn.execute(sa.select(forgotten))}


async def finished(work: Awaitable[T]) -> T:
    return await asyncio.wait_for(work, 30)


async def test_forget_leaves_nothing_waiting_on_the_users_exchanges(
    engine: AsyncEngine,
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
    waiting = {
        "turns": 2,
        "memories": 0,
        "memory_modes": 0,
        "formation_outbox": 1,
        "fact_outbox": 1,
        "memory_uses": 1,
    }
    assert await rows_of(engine, ALICE) == waiting

    await forget(engine, ALICE)

    assert set((await rows_of(engine, ALICE)).values()) == {0}
    assert await rows_of(engine, BOB) == waiting
    assert await tombstoned(engine) == {("user", ALICE)}
    await forget(engine, ALICE)  # asked again: nothing more, one tombstone
    assert await tombstoned(engine) == {("user", ALICE)}


async def test_an_exchange_confirmed_after_the_forget_stores_nothing(
    engine: AsyncEngine,
) -> None:
    """Gateway read Alice's job just before her data was deleted; its StoreExchange lands
    after the forget committed. It succeeds (gateway then delivers the job: nothing to retry)
    and stores nothing: no turn, nothing queued for formation or fact extraction, no memory
    use. Bob, and the channel's own turns, are stored as ever."""
    await store(engine, "job-alice-1", ALICE, "My sister Dana lives in Lisbon")
    await forget(engine, ALICE)
    history = History(PostgresTurnStore(engine))

    for _attempt in range(2):  # a retry of the confirmation too
        late = await history.store_exchange(
            "job-alice-2",
            "chan-1",
            PERSONA,
            ALICE,
            exchange("job-alice-2", ALICE, "and she has two cats").turns,
            used_memory_ids=(str(uuid.uuid4()),),
            extract_facts=True,
        )
        assert late == StoredExchange(turns=[], created=False)

    assert set((await rows_of(engine, ALICE)).values()) == {0}
    bobs = await history.store_exchange(
        "job-bob-1", "chan-1", PERSONA, BOB, exchange("job-bob-1", BOB, "hi").turns
    )
    greeting = await history.store_exchange(
        "job-greeting", "chan-1", PERSONA, "", (NewTurn("assistant", "Welcome!"),), imported=True
    )
    assert (bobs.created, len(bobs.turns), greeting.created) == (True, 2, True)


async def test_an_exchange_arriving_while_the_forget_deletes_stores_nothing_at_once(
    engine: AsyncEngine,
) -> None:
    """The tombstone commits before the deletes: a StoreExchange arriving while they run
    (here they wait for a row an edit holds) does not wait for them, and stores nothing."""
    await store(engine, "job-alice-1", ALICE, "My sister Dana lives in Lisbon")
    async with engine.connect() as editing:  # an EditTurn of her turn, not committed yet
        await editing.begin()
        await editing.execute(
            sa.select(turns.c.id).where(turns.c.user_id == ALICE).with_for_update()
        )
        forgetting = asyncio.create_task(UserForgetter(engine).forget(ALICE))
        assert await lock_waiters(engine, 1, unless=forgetting) == 1  # the deletes, on the row
        late = await finished(
            PostgresTurnStore(engine).store_exchange(exchange("job-alice-2", ALICE, "two cats"))
        )
        assert not forgetting.done()  # the exchange did not wait for the deletes
        await editing.commit()
    await finished(forgetting)

    assert late == StoredExchange(turns=[], created=False)
    assert set((await rows_of(engine, ALICE)).values()) == {0}


async def test_an_exchange_being_stored_when_the_forget_starts_is_forgotten_too(
    engine: AsyncEngine,
) -> None:
    """A StoreExchange past its tombstone check (held up by a duplicate insert of its job
    that has not committed yet) when the forget starts: the forget waits for it to commit,
    then deletes what it stored."""
    async with engine.connect() as duplicate:
        await duplicate.begin()
        await duplicate.execute(
            turns.insert().values(
                job_id="job-alice-1", position=0, channel_id="chan-1", personality_id=PERSONA,
                user_id=ALICE, role="user", content="a retry of the same confirmation",
            )
        )  # fmt: skip
        storing = asyncio.create_task(
            PostgresTurnStore(engine).store_exchange(
                exchange("job-alice-1", ALICE, "My sister Dana lives in Lisbon", extract_facts=True)
            )
        )
        assert await lock_waiters(engine, 1, unless=storing) == 1  # on the duplicate's row
        forgetting = asyncio.create_task(UserForgetter(engine).forget(ALICE))
        # The forget waits for the exchange (without the tombstones' lock it would not, and
        # the exchange would be stored after it).
        waited = await lock_waiters(engine, 2, unless=forgetting)
        await duplicate.rollback()
    stored = await finished(storing)
    forgotten_now = await finished(forgetting)

    assert set((await rows_of(engine, ALICE)).values()) == {0}
    assert (stored.created, len(stored.turns), forgotten_now.deleted_turns) == (True, 2, 2)
    assert waited == 2


async def test_a_formation_batch_leased_before_the_forget_writes_nothing(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    await store(engine, "job-alice", ALICE, "My sister Dana lives in Lisbon with two cats")
    memory_store = PostgresMemoryStore(engine)
    claim = await memory_store.claim_formation(10, lease=60)
    assert claim is not None
    assert claim.job_ids == ("job-alice",)

    await forget(engine, ALICE)  # while the batch is being embedded

    with pytest.raises(LeaseLost):
        await LongTermMemory(memory_store, embedder).form_many(
            list(claim.turns.values()), claim.preceding, claim=claim
        )
    assert set((await rows_of(engine, ALICE)).values()) == {0}


def formed(user_id: str, text: str, vector: list[float]) -> FormedRow:
    return FormedRow(
        id=str(uuid.uuid4()),
        scope=MemoryScope(PERSONA, user_id),
        text=text,
        vector=vector,
        sector="semantic",
        salience=0.5,
        source_turn_ids=(str(uuid.uuid4()),),
        created_at=None,
    )


async def test_formation_writes_no_memory_of_a_forgotten_user(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """Formation's write (here without an outbox claim, which would already be lost) keeps
    the batch's other memories and leaves hers out, with the links to them."""
    dana, cats, paris = await embedder.embed(["Dana lives in Lisbon", "two cats", "Paris"])
    hers = [formed(ALICE, "Dana lives in Lisbon", dana), formed(ALICE, "two cats", cats)]
    his = formed(BOB, "Bob moved to Paris", paris)
    await forget(engine, ALICE)
    memory_store = PostgresMemoryStore(engine)

    written = await memory_store.write_formed(
        [*hers, his], {}, [(hers[0].id, hers[1].id)], link_weight=0.5
    )

    assert written
    assert set((await rows_of(engine, ALICE)).values()) == {0}
    assert (await rows_of(engine, BOB))["memories"] == 1
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(waypoints)) == 0


async def test_facts_extracted_before_the_forget_are_not_stored_after_it(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    await store(engine, "job-alice", ALICE, "I moved to Berlin last week", extract_facts=True)
    facts = Facts(PostgresFactStore(engine), PostgresTurnStore(engine), embedder)
    (batch,) = await facts.claim()
    assert batch.scope == MemoryScope(PERSONA, ALICE)

    await forget(engine, ALICE)  # while gateway has the LLM extract them

    stored, superseded = await facts.store(
        PERSONA, ALICE, batch.job_ids, [NewFact("Alice lives in Berlin")]
    )
    assert (stored, superseded) == ([], 0)
    assert set((await rows_of(engine, ALICE)).values()) == {0}


async def test_store_facts_checks_the_tombstone_itself(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """StoreFacts refuses a forgotten user even with her jobs still waiting (a forget leaves
    none: this is the tombstone alone, which also orders StoreFacts and a forget)."""
    await store(engine, "job-alice", ALICE, "I moved to Berlin last week", extract_facts=True)
    facts = Facts(PostgresFactStore(engine), PostgresTurnStore(engine), embedder)
    (batch,) = await facts.claim()
    async with engine.begin() as conn:
        await conn.execute(forgotten.insert().values(kind="user", id=ALICE))

    stored, _ = await facts.store(PERSONA, ALICE, batch.job_ids, [NewFact("Alice: Berlin")])

    assert stored == []
    assert (await rows_of(engine, ALICE))["memories"] == 0


async def test_no_memory_is_added_for_a_forgotten_user_nor_on_her_behalf(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    longterm = LongTermMemory(PostgresMemoryStore(engine), embedder)
    await forget(engine, ALICE)

    with pytest.raises(Forgotten) as refused:
        await longterm.add(PERSONA, ALICE, "Alice keeps a key under the blue flowerpot")
    assert isinstance(refused.value, FailedPrecondition)
    assert refused.value.reason == "FORGOTTEN"
    with pytest.raises(Forgotten):  # an import naming the memory
        await longterm.add(PERSONA, ALICE, "Alice sails", memory_id=str(uuid.uuid4()))
    with pytest.raises(Forgotten):  # the lore, from her turn
        await longterm.add(PERSONA, "", "The lighthouse is haunted", on_behalf_of=ALICE)

    assert (await rows_of(engine, ALICE))["memories"] == 0
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(memories)) == 0
    added = await longterm.add(PERSONA, BOB, "Bob grows tomatoes", on_behalf_of=BOB)
    assert added.memory.user_id == BOB


async def test_no_memory_mode_is_set_for_a_forgotten_user(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    longterm = LongTermMemory(PostgresMemoryStore(engine), embedder)
    await longterm.set_mode(PERSONA, ALICE, None, datetime.now(UTC))
    await forget(engine, ALICE)

    with pytest.raises(Forgotten):  # gateway's SetIncognito read her mode just before
        await longterm.set_mode(PERSONA, ALICE, None, datetime.now(UTC))

    assert (await rows_of(engine, ALICE))["memory_modes"] == 0
    assert await longterm.set_mode(PERSONA, BOB, None, None) == MemoryMode()


async def test_a_reflection_of_a_forgotten_users_memories_is_not_kept(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    async def forget_her(scope: MemoryScope) -> None:
        await forget(engine, scope.user_id)

    scope = MemoryScope(PERSONA, ALICE)
    assert await reflect_forgetting_meanwhile(engine, embedder, scope, forget_her) == 0

    assert (await rows_of(engine, ALICE))["memories"] == 0


async def test_after_forget_user_over_grpc_her_writes_store_nothing(connect: Connect) -> None:
    gateway = connect("gateway")

    def confirmed(job_id: str) -> mem.StoreExchangeRequest:
        return mem.StoreExchangeRequest(
            job_id=job_id, channel_id="chan-1", personality_id=PERSONA, user_id=ALICE,
            extract_facts=True,
            turns=[
                common.Turn(role=common.ROLE_USER, content="my cat is called Pixel"),
                common.Turn(role=common.ROLE_ASSISTANT, content="a fine name"),
            ],
        )  # fmt: skip

    assert (await gateway.StoreExchange(confirmed("job-alice-1"))).created
    forgotten_now = await gateway.ForgetUser(mem.ForgetUserRequest(user_id=ALICE))
    assert forgotten_now.deleted_turns == 2

    late = await gateway.StoreExchange(confirmed("job-alice-2"))  # OK: nothing to retry

    assert (late.created, list(late.turns)) == (False, [])
    history = mem.GetHistoryRequest(channel_id="chan-1", personality_id=PERSONA)
    assert list((await gateway.GetHistory(history)).turns) == []
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await gateway.AddMemory(
            mem.AddMemoryRequest(
                memory=common.Memory(personality_id=PERSONA, user_id=ALICE, text="likes tea")
            )
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert from_rpc_error(refused.value).reason == "FORGOTTEN"
    with pytest.raises(grpc.aio.AioRpcError) as mode:
        await gateway.SetMemoryMode(
            mem.SetMemoryModeRequest(personality_id=PERSONA, user_id=ALICE, mode=mem.MemoryMode())
        )
    assert from_rpc_error(mode.value).reason == "FORGOTTEN"
