"""Long-term memory over real mTLS gRPC and real Postgres + pgvector.

Most tests embed with the fake provider's deterministic bag-of-words vectors (texts that
share words are close); one runs the real all-MiniLM-L6-v2 end to end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.app import MemoryApp, start_memory
from tzurot.memory.config import MemorySettings
from tzurot.memory.embedding import Embedder
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.memory.scoring import Weights
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import memories, waypoints
from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import from_rpc_error
from tzurot.runtime.tls import load_tls
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.component

if TYPE_CHECKING:
    Stub = mem_grpc.MemoryServiceAsyncStub

PERSONA = "lilith"
ALICE = "user-alice"
BOB = "user-bob"


async def _serve(
    memory_url: str, pki: Path, embedder: Embedder
) -> AsyncIterator[tuple[MemoryApp, Stub]]:
    settings = MemorySettings(
        listen="127.0.0.1:0", tls_dir=pki / "memory", database_url=SecretStr(memory_url)
    )
    app = await start_memory(settings, embedder)
    try:
        channel = secure_channel(
            f"127.0.0.1:{app.port}",
            load_tls(pki / "gateway"),
            server_identity="memory",
            default_timeout=30.0,
        )
        try:
            yield app, mem_grpc.MemoryServiceStub(channel)
        finally:
            await channel.close()
    finally:
        await app.stop()


@pytest.fixture
async def served(
    memory_url: str, pki: Path, embedder: Embedder
) -> AsyncIterator[tuple[MemoryApp, Stub]]:
    async for pair in _serve(memory_url, pki, embedder):
        yield pair


@pytest.fixture
def stub(served: tuple[MemoryApp, Stub]) -> Stub:
    return served[1]


def add(text: str, user_id: str = ALICE, **fields: object) -> mem.AddMemoryRequest:
    return mem.AddMemoryRequest(
        memory=common.Memory(personality_id=PERSONA, user_id=user_id, text=text, **fields)  # type: ignore[arg-type]
    )


def query(text: str, user_id: str = ALICE, **fields: object) -> mem.QueryMemoriesRequest:
    return mem.QueryMemoriesRequest(personality_id=PERSONA, user_id=user_id, query=text, **fields)  # type: ignore[arg-type]


def stamp(value: datetime) -> Timestamp:
    result = Timestamp()
    result.FromDatetime(value)
    return result


async def test_add_then_query_within_scope(stub: Stub) -> None:
    added = await stub.AddMemory(add("alice adopted a golden retriever puppy named max"))
    assert not added.merged
    assert added.memory.sector == common.MEMORY_SECTOR_SEMANTIC
    await stub.AddMemory(add("bob adopted a golden retriever puppy named rex", user_id=BOB))
    await stub.AddMemory(add("lilith guards the golden gate of the retriever city", user_id=""))
    await stub.AddMemory(add("alice works as a nurse in the night shift"))

    found = await stub.QueryMemories(query("golden retriever puppy", threshold=0.3))
    texts = [m.text for m in found.memories]
    assert texts[0] == "alice adopted a golden retriever puppy named max"
    assert "lilith guards the golden gate of the retriever city" in texts  # shared lore
    assert all("bob" not in text for text in texts)  # another user's memory never leaks
    scores = [m.score for m in found.memories]
    assert scores == sorted(scores, reverse=True)
    assert all(0.3 <= s <= 1 for s in scores)
    assert found.memories[0].user_id == ALICE


async def test_threshold_and_limit_default_and_apply(stub: Stub) -> None:
    for n in range(25):
        await stub.AddMemory(add(f"note {n} about the garden roses and tulips number{n}"))
    default = await stub.QueryMemories(query("garden roses tulips"))
    assert len(default.memories) == 20  # limit defaults to 20
    assert all(m.score >= 0.5 for m in default.memories)  # threshold defaults to 0.5
    three = await stub.QueryMemories(query("garden roses tulips", limit=3))
    assert len(three.memories) == 3
    none = await stub.QueryMemories(query("quantum chromodynamics lecture", threshold=0.9))
    assert list(none.memories) == []


async def test_near_duplicate_merges(stub: Stub) -> None:
    first = await stub.AddMemory(
        add("alice is allergic to peanuts", source_turn_ids=["t1"], salience=0.4)
    )
    again = await stub.AddMemory(
        add("alice is allergic to peanuts", source_turn_ids=["t2"], salience=0.8)
    )
    assert again.merged
    assert again.memory.id == first.memory.id
    assert sorted(again.memory.source_turn_ids) == ["t1", "t2"]
    assert again.memory.salience == pytest.approx(0.8)
    count = await stub.CountMemories(
        mem.CountMemoriesRequest(personality_id=PERSONA, user_id=ALICE)
    )
    assert count.total == 1


async def test_merges_keep_each_users_turns_apart(stub: Stub) -> None:
    """A merge adds the new turns to its own row only, never every memory's turns."""
    for user, turns in ((ALICE, ["a1", "a2"]), (BOB, ["b1", "b2"])):
        for turn in turns:
            await stub.AddMemory(
                add("likes green tea in the morning", user_id=user, source_turn_ids=[turn])
            )
    await stub.AddMemory(add("collects vintage stamps from japan", source_turn_ids=["a3"]))
    await stub.AddMemory(add("collects vintage stamps from japan", source_turn_ids=["a4"]))
    for user, expected in (
        (ALICE, [["a1", "a2"], ["a3", "a4"]]),
        (BOB, [["b1", "b2"]]),
    ):
        found = await stub.QueryMemories(
            query("green tea vintage stamps", user_id=user, threshold=0.1)
        )
        assert sorted(sorted(m.source_turn_ids) for m in found.memories) == expected


async def test_waypoints_link_similar_and_search_changes_nothing(
    served: tuple[MemoryApp, Stub], engine: AsyncEngine
) -> None:
    _app, stub = served
    a = (await stub.AddMemory(add("alice drinks green tea every quiet morning at home"))).memory
    b = (await stub.AddMemory(add("alice drinks green tea every quiet evening at home"))).memory
    c = (await stub.AddMemory(add("the weather report says heavy snow in the mountains"))).memory
    edges = await _edges(engine)
    assert edges[a.id, b.id] == pytest.approx(0.5)  # similar (cosine >= 0.75), same sector
    assert edges[b.id, a.id] == pytest.approx(0.5)
    assert (a.id, c.id) not in edges

    before = await _saliences(engine)
    for _ in range(3):
        found = await stub.QueryMemories(query("green tea morning evening snow", threshold=0.01))
        assert {m.id for m in found.memories} == {a.id, b.id, c.id}
    assert await _edges(engine) == edges  # retrieval links nothing
    assert await _saliences(engine) == before  # and reinforces nothing


async def _edges(engine: AsyncEngine) -> dict[tuple[str, str], float]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(waypoints))).all()
    return {(str(r.src_id), str(r.dst_id)): r.weight for r in rows}


async def _saliences(engine: AsyncEngine) -> dict[str, tuple[float, datetime]]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(memories.c.id, memories.c.salience, memories.c.last_accessed_at)
            )
        ).all()
    return {str(r.id): (r.salience, r.last_accessed_at) for r in rows}


async def test_use_in_a_kept_answer_reinforces_once(
    served: tuple[MemoryApp, Stub], engine: AsyncEngine
) -> None:
    """Only memories in the prompt of a delivered answer that stood are reinforced."""
    _app, stub = served
    used = (await stub.AddMemory(add("alice plays the cello in an orchestra"))).memory
    regretted = (await stub.AddMemory(add("alice hates the smell of fresh paint"))).memory
    idle = (await stub.AddMemory(add("alice once saw a comet from the roof"))).memory
    kept = exchange("job-kept", "how is the orchestra going?")
    kept.used_memory_ids.append(used.id)
    await stub.StoreExchange(kept)
    deleted = exchange("job-deleted", "should I paint my room?")
    deleted.used_memory_ids.append(regretted.id)
    deleted.turns[1].message_ids.append("m-regretted")
    await stub.StoreExchange(deleted)
    await stub.DeleteTurns(mem.DeleteTurnsRequest(message_ids=["m-regretted"]))

    done = await stub.Consolidate(mem.ConsolidateRequest())
    assert done.reinforced == 0  # too early: the user may still delete or regenerate
    async with engine.begin() as conn:
        await conn.execute(
            sa.text("update memory.memory_uses set created_at = now() - interval '1 hour'")
        )
    done = await stub.Consolidate(mem.ConsolidateRequest())
    assert done.reinforced == 1
    after = await _saliences(engine)
    assert after[used.id][0] > used.salience
    assert after[regretted.id][0] <= regretted.salience
    assert after[idle.id][0] <= idle.salience
    again = await stub.Consolidate(mem.ConsolidateRequest())
    assert again.reinforced == 0  # each use counts once


async def test_dated_exchange_forms_dated_memories(served: tuple[MemoryApp, Stub]) -> None:
    app, stub = served
    when = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    dated = exchange("job-dated", "I adopted a greyhound called Pixel today")
    dated.occurred_at.CopyFrom(stamp(when))
    stored = await stub.StoreExchange(dated)
    assert {t.created_at.ToDatetime(UTC) for t in stored.turns} == {when}
    await app.formation.drain()
    found = await stub.QueryMemories(query("greyhound pixel", no_threshold=True))
    assert found.memories
    assert all(m.created_at.ToDatetime(UTC) == when for m in found.memories)
    added = await stub.AddMemory(add("alice learned to sail in 2019", created_at=stamp(when)))
    assert added.memory.created_at.ToDatetime(UTC) == when
    future = exchange("job-future", "from the future")
    future.occurred_at.CopyFrom(stamp(datetime.now(UTC) + timedelta(days=1)))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.StoreExchange(future)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "occurred_at" in (refused.value.details() or "")


async def test_no_threshold_returns_weak_matches(stub: Stub) -> None:
    await stub.AddMemory(add("alice keeps bees on the balcony"))
    default = await stub.QueryMemories(query("quantum chromodynamics lecture"))
    assert list(default.memories) == []
    everything = await stub.QueryMemories(
        query("quantum chromodynamics lecture", no_threshold=True)
    )
    assert [m.text for m in everything.memories] == ["alice keeps bees on the balcony"]


async def test_query_expands_through_waypoints_when_weak(
    longterm: LongTermMemory, memory_store: PostgresMemoryStore
) -> None:
    """Off by default (it lowered LoCoMo recall); an operator can weigh waypoints in."""
    longterm.tuning = replace(longterm.tuning, weights=Weights(0.6, 0.2, 0.15, 0.05))
    hit = await longterm.add(PERSONA, ALICE, "alice visited lisbon in portugal last spring")
    linked = await longterm.add(PERSONA, ALICE, "pasteis de nata custard tarts")
    for n in range(3):
        await longterm.add(PERSONA, ALICE, f"unrelated chore list item {n} laundry dishes")
    await memory_store.link([(hit.memory.id, linked.memory.id)], 0.9)
    ranked = await longterm.query(PERSONA, ALICE, "lisbon trip", threshold=0.01)
    ids = [m.id for m in ranked]
    assert ids[0] == hit.memory.id
    assert linked.memory.id in ids  # one hop from the best hit, no shared word with the query
    linked_rank = ids.index(linked.memory.id)
    assert all("chore" in m.text for m in ranked[linked_rank + 1 :])


async def test_exclude_after_and_fresh_mode(stub: Stub, engine: AsyncEngine) -> None:
    old = (await stub.AddMemory(add("alice loves sailing on the lake"))).memory
    new = (await stub.AddMemory(add("alice bought a sailing boat for the lake"))).memory
    await _age(engine, old.id, days=3)
    cut = datetime.now(UTC) - timedelta(days=1)
    seen = await stub.QueryMemories(query("sailing lake", threshold=0.1))
    assert {m.id for m in seen.memories} == {old.id, new.id}

    before_cut = await stub.QueryMemories(
        query("sailing lake", threshold=0.1, exclude_after=stamp(cut))
    )
    assert [m.id for m in before_cut.memories] == [old.id]  # newer ones are in the prompt

    mode = mem.MemoryMode(fresh_since=stamp(cut))
    await stub.SetMemoryMode(
        mem.SetMemoryModeRequest(personality_id=PERSONA, user_id=ALICE, mode=mode)
    )
    fresh = await stub.QueryMemories(query("sailing lake", threshold=0.1))
    assert [m.id for m in fresh.memories] == [new.id]
    got = await stub.GetMemoryMode(mem.GetMemoryModeRequest(personality_id=PERSONA, user_id=ALICE))
    assert got.mode.fresh_since.ToDatetime(tzinfo=UTC) == cut.replace(microsecond=cut.microsecond)
    assert not got.mode.HasField("incognito_until")


async def _age(engine: AsyncEngine, memory_id: str, *, days: float) -> None:
    then = datetime.now(UTC) - timedelta(days=days)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(memories)
            .where(memories.c.id == uuid.UUID(memory_id))
            .values(created_at=then, last_accessed_at=then, decayed_at=then)
        )


def exchange(job_id: str, content: str, user_id: str = ALICE) -> mem.StoreExchangeRequest:
    return mem.StoreExchangeRequest(
        job_id=job_id,
        channel_id="chan-1",
        personality_id=PERSONA,
        user_id=user_id,
        turns=[
            common.Turn(role=common.ROLE_USER, author_name="Alice", content=content),
            common.Turn(
                role=common.ROLE_ASSISTANT, author_name="Lilith", content=f"noted that {content}"
            ),
        ],
    )


async def test_delivered_exchange_forms_memories_once(served: tuple[MemoryApp, Stub]) -> None:
    app, stub = served
    stored = await stub.StoreExchange(exchange("job-1", "my sister lives in oslo with her cat"))
    await app.formation.drain()
    count = await stub.CountMemories(
        mem.CountMemoriesRequest(personality_id=PERSONA, user_id=ALICE)
    )
    assert count.total == 2
    found = await stub.QueryMemories(query("sister oslo cat", threshold=0.1))
    by_text = {m.text: m for m in found.memories}
    user_memory = by_text["Alice: my sister lives in oslo with her cat"]
    assert list(user_memory.source_turn_ids) == [stored.turns[0].id]
    assert "Lilith: noted that my sister lives in oslo with her cat" in by_text

    retried = await stub.StoreExchange(exchange("job-1", "my sister lives in oslo with her cat"))
    assert not retried.created
    assert await app.formation.drain() == 0
    count = await stub.CountMemories(
        mem.CountMemoriesRequest(personality_id=PERSONA, user_id=ALICE)
    )
    assert count.total == 2


async def test_a_memory_is_found_by_the_words_of_its_neighbouring_turns(
    served: tuple[MemoryApp, Stub],
) -> None:
    """An answer ("Yes, last week!") is searched with the turns around it."""
    app, stub = served

    def said(
        job_id: str, *turns: tuple[common.Role.ValueType, str, str]
    ) -> mem.StoreExchangeRequest:
        return mem.StoreExchangeRequest(
            job_id=job_id,
            channel_id="chan-1",
            personality_id=PERSONA,
            user_id=ALICE,
            turns=[common.Turn(role=r, author_name=n, content=c) for r, n, c in turns],
        )

    await stub.StoreExchange(
        said(
            "job-ask",
            (common.ROLE_USER, "Alice", "did you ever visit the lighthouse museum"),
            (common.ROLE_ASSISTANT, "Lilith", "not yet, tell me about it"),
        )
    )
    await stub.StoreExchange(
        said("job-answer", (common.ROLE_USER, "Alice", "yes, twice during the summer"))
    )
    await app.formation.drain()
    found = await app.longterm.query(PERSONA, ALICE, "lighthouse museum", no_threshold=True)
    by_text = {m.text: m for m in found}
    # Its own exchange's neighbour, and the previous exchange's last turn.
    assert "lighthouse museum" in by_text["Lilith: not yet, tell me about it"].context
    answer = by_text["Alice: yes, twice during the summer"]
    assert answer.context == "Lilith: not yet, tell me about it"
    # Full text finds the reply by the question's words; the prompt's text stays its own.
    (vector,) = await app.embedder.embed(["lighthouse"])
    hits = await PostgresMemoryStore(app.engine).keyword_search(
        PERSONA, [ALICE], ["lighthouse"], vector, 10
    )
    assert {hit.memory.text for hit in hits} == {
        "Alice: did you ever visit the lighthouse museum",
        "Lilith: not yet, tell me about it",
    }


async def test_outbox_survives_a_crash(engine: AsyncEngine, longterm: LongTermMemory) -> None:
    """An exchange stored by a process that died before forming: the next one forms it."""
    from tzurot.memory.domain import Exchange, NewTurn

    turns = PostgresTurnStore(engine)
    await turns.store_exchange(
        Exchange(
            "job-crash",
            "chan-1",
            PERSONA,
            ALICE,
            (NewTurn("user", "remember that my locker code is nine one four"),),
        )
    )
    store = PostgresMemoryStore(engine)
    assert await store.pending_jobs(10) == ["job-crash"]
    assert await Formation(store, longterm).drain() == 1
    assert await store.pending_jobs(10) == []
    assert (await store.stats(PERSONA, ALICE)).total == 1


async def test_incognito_stores_nothing(served: tuple[MemoryApp, Stub]) -> None:
    app, stub = served
    until = datetime.now(UTC) + timedelta(hours=1)
    await stub.SetMemoryMode(
        mem.SetMemoryModeRequest(
            personality_id=PERSONA, user_id=ALICE, mode=mem.MemoryMode(incognito_until=stamp(until))
        )
    )
    await stub.StoreExchange(exchange("job-secret", "my secret diary entry about the party"))
    await app.formation.drain()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AddMemory(add("something private to keep"))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert from_rpc_error(caught.value).reason == "INCOGNITO"
    count = await stub.CountMemories(
        mem.CountMemoriesRequest(personality_id=PERSONA, user_id=ALICE)
    )
    assert count.total == 0
    # Nor in the shared lore on her behalf (a skill's findings from her turn).
    lore = add("the base opened with a crew of six", user_id="")
    lore.on_behalf_of_user_id = ALICE
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AddMemory(lore)
    assert from_rpc_error(caught.value).reason == "INCOGNITO"
    shared = await stub.CountMemories(mem.CountMemoriesRequest(personality_id=PERSONA))
    assert shared.total == 0
    lore.on_behalf_of_user_id = BOB
    assert (await stub.AddMemory(lore)).memory.user_id == ""  # Bob's turn may teach the lore
    # Bob is not incognito.
    await stub.StoreExchange(exchange("job-bob", "bob likes long walks on the beach", BOB))
    await app.formation.drain()
    bob = await stub.CountMemories(mem.CountMemoriesRequest(personality_id=PERSONA, user_id=BOB))
    assert bob.total == 2


async def _set_incognito(stub: Stub, until: datetime | None) -> None:
    mode = mem.MemoryMode(incognito_until=stamp(until)) if until else mem.MemoryMode()
    await stub.SetMemoryMode(
        mem.SetMemoryModeRequest(personality_id=PERSONA, user_id=ALICE, mode=mode)
    )


async def test_incognito_is_the_mode_when_the_exchange_was_stored(
    served: tuple[MemoryApp, Stub],
) -> None:
    """Not the mode when the formation worker gets to it."""
    app, stub = served
    # Said while incognito, formed after incognito ended: never remembered.
    await _set_incognito(stub, datetime.now(UTC) + timedelta(hours=1))
    await stub.StoreExchange(exchange("job-secret", "my secret diary entry about the party"))
    await _set_incognito(stub, None)
    # Said before incognito began, formed while incognito: remembered.
    await stub.StoreExchange(exchange("job-open", "my open letter about the garden fence"))
    await _set_incognito(stub, datetime.now(UTC) + timedelta(hours=1))
    await app.formation.drain()
    found = await app.longterm.query(PERSONA, ALICE, "diary letter party garden", no_threshold=True)
    texts = " ".join(m.text for m in found)
    assert "garden fence" in texts
    assert "secret diary" not in texts


async def test_an_imported_exchange_forms_no_memories(served: tuple[MemoryApp, Stub]) -> None:
    """A shapes.inc history brings its own summaries: its exchanges are history only."""
    app, stub = served
    imported = exchange("job-imported", "my imported diary entry about the lighthouse")
    imported.imported = True
    stored = await stub.StoreExchange(imported)
    assert stored.created
    await stub.StoreExchange(exchange("job-live", "my live note about the garden fence"))
    await app.formation.drain()
    found = await app.longterm.query(PERSONA, ALICE, "diary lighthouse garden", no_threshold=True)
    texts = " ".join(m.text for m in found)
    assert "garden fence" in texts
    assert "lighthouse" not in texts
    history = await stub.GetHistory(
        mem.GetHistoryRequest(channel_id=imported.channel_id, personality_id=PERSONA)
    )
    assert any("lighthouse" in t.content for t in history.turns)  # kept as history


async def test_count_and_drop_weak(stub: Stub) -> None:
    await stub.AddMemory(add("yesterday I went to the concert downtown", salience=0.9))
    await stub.AddMemory(add("I feel so happy and excited about the trip!!", salience=0.1))
    await stub.AddMemory(add("how to install the printer driver step by step", salience=0.2))
    await stub.AddMemory(add("bob fact", user_id=BOB, salience=0.1))
    count = await stub.CountMemories(
        mem.CountMemoriesRequest(personality_id=PERSONA, user_id=ALICE)
    )
    assert count.total == 3
    assert {t.sector: t.count for t in count.sectors} == {
        common.MEMORY_SECTOR_EPISODIC: 1,
        common.MEMORY_SECTOR_EMOTIONAL: 1,
        common.MEMORY_SECTOR_PROCEDURAL: 1,
    }
    assert count.oldest.ToDatetime() <= count.newest.ToDatetime()
    dropped = await stub.DropWeakMemories(
        mem.DropWeakMemoriesRequest(personality_id=PERSONA, user_id=ALICE, threshold=0.5)
    )
    assert dropped.deleted == 2
    after = await stub.CountMemories(
        mem.CountMemoriesRequest(personality_id=PERSONA, user_id=ALICE)
    )
    assert after.total == 1
    bob = await stub.CountMemories(mem.CountMemoriesRequest(personality_id=PERSONA, user_id=BOB))
    assert bob.total == 1


async def test_consolidate_decays_prunes_merges(
    stub: Stub, engine: AsyncEngine, memory_store: PostgresMemoryStore
) -> None:
    episodic = (await stub.AddMemory(add("yesterday I went hiking", salience=0.8))).memory
    reflective = (
        await stub.AddMemory(
            add("a lesson about patience", salience=0.8, sector=common.MEMORY_SECTOR_REFLECTIVE)
        )
    ).memory
    await _age(engine, episodic.id, days=10)
    await _age(engine, reflective.id, days=10)
    # Two near-identical memories stored behind merge's back (as concurrent adds could).
    vector = [1.0] + [0.0] * 383
    from tzurot.memory.domain import MemoryScope

    scope = MemoryScope(PERSONA, ALICE)
    twin_a = await memory_store.insert(
        scope,
        text="twin a",
        embedding=vector,
        sector="semantic",
        salience=0.3,
        source_turn_ids=["ta"],
    )
    twin_b = await memory_store.insert(
        scope,
        text="twin b",
        embedding=vector,
        sector="semantic",
        salience=0.6,
        source_turn_ids=["tb"],
    )
    await memory_store.link([(episodic.id, reflective.id)], 0.04)
    done = await stub.Consolidate(mem.ConsolidateRequest())
    assert done.decayed == 2
    assert done.pruned == 2  # both directions of the weak edge
    assert done.merged == 1
    async with engine.connect() as conn:
        rows = {
            str(r.id): r
            for r in (
                await conn.execute(
                    sa.select(memories.c.id, memories.c.salience, memories.c.source_turn_ids)
                )
            ).all()
        }
    assert rows[episodic.id].salience == pytest.approx(0.8 * 2.718281828 ** (-0.015 * 10), rel=1e-3)
    assert rows[reflective.id].salience == pytest.approx(
        0.8 * 2.718281828 ** (-0.001 * 10), rel=1e-3
    )
    assert twin_b.id not in rows
    assert sorted(rows[twin_a.id].source_turn_ids) == ["ta", "tb"]
    assert rows[twin_a.id].salience == pytest.approx(0.6, rel=1e-3)
    again = await stub.Consolidate(mem.ConsolidateRequest())
    assert (again.decayed, again.pruned, again.merged) == (0, 0, 0)


async def test_a_memory_decayed_past_what_exp_computes_breaks_no_consolidation(
    stub: Stub, engine: AsyncEngine
) -> None:
    """Postgres' exp() raises "underflow" below about -745: an emotional memory last decayed
    in 1970 reaches that in 2072 (and one older sooner). Its decay stops at ~1e-304 instead,
    and Consolidate and DropWeakMemories go on for every memory."""
    old = await stub.AddMemory(add("I feel so happy and grateful about it!!", salience=0.9))
    kept = (await stub.AddMemory(add("yesterday I went hiking", salience=0.8))).memory
    await _age(engine, old.memory.id, days=200 * 365)  # -0.02 * 73,000 = -1,460
    done = await stub.Consolidate(mem.ConsolidateRequest())
    assert done.decayed == 1
    saliences = {memory_id: found for memory_id, (found, _) in (await _saliences(engine)).items()}
    assert saliences == {old.memory.id: pytest.approx(0.0, abs=1e-300), kept.id: 0.8}
    dropped = await stub.DropWeakMemories(
        mem.DropWeakMemoriesRequest(personality_id=PERSONA, user_id=ALICE, threshold=0.5)
    )
    assert dropped.deleted == 1


async def test_times_before_1970_are_refused(stub: Stub) -> None:
    for request in (
        add("alice sailed in 1969", created_at=stamp(datetime(1969, 12, 31, tzinfo=UTC))),
        add("in the year one", created_at=stamp(datetime(1, 1, 1, tzinfo=UTC))),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.AddMemory(request)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert caught.value.details() == "memory.created_at must not be before 1970"
    old = exchange("job-1969", "hello from 1969")
    old.occurred_at.FromDatetime(datetime(1969, 7, 20, tzinfo=UTC))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.StoreExchange(old)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "occurred_at must not be before 1970"


async def test_consolidate_reflects_on_episodic_clusters(
    longterm: LongTermMemory, memory_store: PostgresMemoryStore, engine: AsyncEngine
) -> None:
    from tzurot.memory.domain import MemoryScope

    scope = MemoryScope(PERSONA, ALICE)
    base = [1.0] + [0.0] * 383
    for n in range(20):
        close = list(base)
        close[1 + n] = 0.3  # cosine to each other ~0.92: one cluster
        await memory_store.insert(
            scope,
            text=f"Yesterday I went to the climbing gym with Sam, visit {n}.",
            embedding=close,
            sector="episodic",
            salience=0.5,
            source_turn_ids=[f"t{n}"],
        )
    made = await longterm.reflect()
    assert made == 1
    stats = await memory_store.stats(PERSONA, ALICE)
    assert stats.sectors == {"episodic": 20, "reflective": 1}
    async with engine.connect() as conn:
        summary = (
            await conn.execute(sa.select(memories).where(memories.c.sector == "reflective"))
        ).one()
        links = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(waypoints)
            .where(waypoints.c.src_id == summary.id)
        )
    assert "climbing gym with Sam" in summary.text
    assert len(summary.source_turn_ids) == 20
    assert links == 20
    assert await longterm.reflect() == 0  # sources are marked reflected


async def test_forget_user_deletes_memories(stub: Stub) -> None:
    await stub.AddMemory(add("alice secret one"))
    await stub.AddMemory(add("alice secret two is different"))
    await stub.AddMemory(add("bob keeps his", user_id=BOB))
    forgotten = await stub.ForgetUser(mem.ForgetUserRequest(user_id=ALICE))
    assert forgotten.deleted_memories == 2
    bob = await stub.CountMemories(mem.CountMemoriesRequest(personality_id=PERSONA, user_id=BOB))
    assert bob.total == 1


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (query(""), "query"),
        (query("x", limit=1000), "limit"),
        (query("x", threshold=2.0), "threshold"),
        (mem.QueryMemoriesRequest(user_id=ALICE, query="x"), "personality_id"),
    ],
)
async def test_query_validation(stub: Stub, request_: mem.QueryMemoriesRequest, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.QueryMemories(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")


async def test_add_validation(stub: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AddMemory(add("   "))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "memory.text" in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.DropWeakMemories(
            mem.DropWeakMemoriesRequest(personality_id=PERSONA, user_id=ALICE, threshold=0)
        )
    assert "threshold" in (caught.value.details() or "")


async def test_real_minilm_end_to_end(
    memory_url: str, pki: Path, minilm: OnnxMiniLMEmbedder
) -> None:
    facts = [
        "I adopted a golden retriever called Max last month.",
        "My favourite food is spicy ramen from the place downtown.",
        "I am training for the Berlin marathon in September.",
        "My brother Tom is a software engineer in Toronto.",
    ]
    async for app, stub in _serve(memory_url, pki, minilm):
        for fact in facts:
            await stub.AddMemory(add(fact))
        dog = await stub.QueryMemories(query("What kind of pet do I have?", threshold=0.1))
        assert dog.memories[0].text == facts[0]
        run = await stub.QueryMemories(query("which race am I preparing for", threshold=0.1))
        assert run.memories[0].text == facts[2]
        stored = await stub.StoreExchange(exchange("job-minilm", "my sister is a violinist"))
        await app.formation.drain()
        sister = await stub.QueryMemories(query("who plays the violin?", threshold=0.1))
        assert sister.memories[0].source_turn_ids[0] in {t.id for t in stored.turns}


async def test_lore_research_tags_are_kept_searched_and_merged(stub: Stub) -> None:
    text = "Researched: the lunar base opened with a crew of six (http://news.test/moon)"
    first = await stub.AddMemory(add(text, user_id="", tags=["lore_research"]))
    assert list(first.memory.tags) == ["lore_research"]
    again = await stub.AddMemory(add(text, user_id="", tags=["lore_research", "moon"]))
    assert again.merged
    assert sorted(again.memory.tags) == ["lore_research", "moon"]
    found = await stub.QueryMemories(query("lunar base crew", user_id="someone", threshold=0.1))
    (memory,) = found.memories
    assert memory.user_id == ""  # shared lore: every user of the personality finds it
    assert sorted(memory.tags) == ["lore_research", "moon"]
    count = await stub.CountMemories(mem.CountMemoriesRequest(personality_id=PERSONA, user_id=""))
    assert count.total == 1


@pytest.mark.parametrize("tags", [["Has Space"], ["x" * 41], [f"t{n}" for n in range(9)]])
async def test_bad_tags_are_refused(stub: Stub, tags: list[str]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AddMemory(add("something worth remembering", tags=tags))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
