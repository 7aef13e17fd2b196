"""A scope's nearest memories are exact under a 1%-selective scope, and no statement that
finds them can take the HNSW index, unless the scope is large (then each one does); the
index needs pgvector 0.8's iterative scan, without which a filtered scan comes back short."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import uuid
from collections.abc import Coroutine
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from tzurot.db import direct
from tzurot.db.engine import create_engine
from tzurot.memory.domain import MemoryScope
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.scope_size import LargeScope
from tzurot.memory.search_sql import NEAREST_MANY as _NEAREST_MANY
from tzurot.memory.search_sql import NEAREST_MANY_HNSW as _NEAREST_MANY_HNSW
from tzurot.memory.search_sql import candidates_sql as _candidates_sql
from tzurot.memory.search_sql import nearest_select
from tzurot.memory.search_sql import nearest_sql as _nearest_sql
from tzurot.memory.tables import memories

pytestmark = pytest.mark.component

ROWS = 2000
K = 15
HNSW = "memories_embedding_idx"


def _vector(rng: random.Random, centre: list[float]) -> list[float]:
    return [c + rng.gauss(0, 0.3) for c in centre]


@dataclasses.dataclass(frozen=True)
class OnePercent:
    """ROWS memories of one personality; 1% of them are user "target"'s."""

    rows: list[dict[str, Any]]
    query: list[float]
    exact: list[str]
    """The target scope's K nearest to `query`, by numpy."""


def _one_percent() -> OnePercent:
    rng = random.Random(7)
    centres = [[rng.gauss(0, 1) for _ in range(384)] for _ in range(10)]
    rows = [
        {
            "id": uuid.UUID(int=n + 1),
            "personality_id": "p",
            # 1% of the rows belong to the scope searched below.
            "user_id": "target" if n % 100 == 0 else f"user-{n % 97}",
            "text": f"memory {n}",
            "embedding": _vector(rng, centres[n % 10]),
            "sector": "semantic",
            "salience": 0.5,
        }
        for n in range(ROWS)
    ]
    query = _vector(rng, centres[3])
    scope = [row for row in rows if row["user_id"] == "target"]
    unit = np.array([row["embedding"] for row in scope])
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    cosines = unit @ (np.array(query) / np.linalg.norm(query))
    exact = [str(scope[i]["id"]) for i in np.argsort(-cosines)[:K]]
    return OnePercent(rows, query, exact)


async def _seeded_store(engine: Any, data: OnePercent, **options: Any) -> PostgresMemoryStore:
    """`data` in a store whose statements can reach the rows through the HNSW index only
    (no scope index), so a statement the index can serve gets it."""
    async with engine.begin() as conn:
        await conn.execute(sa.text("drop index memory.memories_scope_idx"))
        await conn.execute(sa.text("drop index memory.memories_user_idx"))
    store = PostgresMemoryStore(engine, ef_search=40, **options)
    await store.insert_many(data.rows)
    async with engine.begin() as conn:
        await conn.execute(sa.text("analyze memory.memories"))
    return store


async def test_a_scopes_nearest_are_exact_under_a_one_percent_filter(memory_url: str) -> None:
    data = _one_percent()
    query, exact = data.query, data.exact
    # No sequential scan and no scope index: only the HNSW index could order these rows
    # cheaply, so a statement it can serve gets it (the control below).
    engine = create_engine(memory_url, server_settings={"enable_seqscan": "off"})
    try:
        store = await _seeded_store(engine, data)
        hits = await store.nearest("p", ["target"], query, K)
        assert [hit.memory.id for hit in hits] == exact
        # A search's candidates: the vector reaches the scan through an InitPlan.
        found = await store.candidates("p", ["target"], [], query, nearest_k=K, keyword_k=0)
        assert {c.id for c in found} == set(exact)
        (near,) = await store.nearest_many([(MemoryScope("p", "target"), query)], K)
        assert [n.id for n in near] == exact

        scope_filter = [memories.c.personality_id == "p", memories.c.user_id == "target"]
        # EXPLAINed on the engine's own connections: no binary vector codec, the text form.
        search = {"vec": str(query), "pid": "p", "uids": ["target"], "nk": K, "known": []}
        async with engine.connect() as conn:
            plans = [
                await _plan(conn, _sql(nearest_select(scope_filter, query, K), conn)),
                await _plan(conn, _candidates_sql(**_ONLY_NEAREST).text, search),
                await _plan(conn, _nearest_sql(**_NO_WINDOW).text, search),
                await _plan(
                    conn,
                    _NEAREST_MANY.text,
                    {"pids": ["p"], "uids": ["target"], "vecs": [query], "k": K},
                ),
            ]
        assert all(HNSW not in plan for plan in plans), plans

        # The control: ordered by the operator, the same rows are the HNSW index's, and a
        # plain filtered HNSW scan (no iterative scan) comes back short.
        distance = memories.c.embedding.cosine_distance(query)
        stmt = sa.select(memories.c.id).where(*scope_filter).order_by(distance).limit(K)
        async with engine.begin() as conn:
            await conn.execute(sa.text("set local hnsw.ef_search = 40"))
            assert HNSW in await _plan(conn, _sql(stmt, conn))
            await conn.execute(sa.text("set local hnsw.iterative_scan = off"))
            short = (await conn.execute(stmt)).all()
        assert len(short) < K
    finally:
        await engine.dispose()


async def test_a_large_scope_is_searched_through_the_hnsw_index(
    memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scope of `exact_scope_limit` memories or more: its nearest (a search's pool,
    `nearest`, formation's neighbours) come through the HNSW index, near the exact ones;
    a smaller scope of the same store is still compared exactly. Each scope is counted once."""
    data = _one_percent()
    target = [row for row in data.rows if row["user_id"] == "target"]
    engine = create_engine(memory_url, server_settings={"enable_seqscan": "off"})
    try:
        store = await _seeded_store(
            engine, data, large_scope=LargeScope(limit=len(target), walk=0, share=0.005)
        )
        user = "newcomer"  # a scope of three memories
        await store.insert_many(
            [
                {**row, "id": uuid.UUID(int=ROWS + 1 + n), "user_id": user}
                for n, row in enumerate(target[:3])
            ]
        )
        sent = _recorded_statements(monkeypatch)
        found = await store.candidates("p", ["target"], [], data.query, nearest_k=K, keyword_k=0)
        hits = await store.nearest("p", ["target"], data.query, K)
        (near,) = await store.nearest_many([(MemoryScope("p", "target"), data.query)], K)
        for ids in ({c.id for c in found}, {h.memory.id for h in hits}, {n.id for n in near}):
            assert len(ids & set(data.exact)) >= K - 2  # an approximate index, near exact
        assert [h.memory.id for h in hits] == [n.id for n in near]
        counted = [sql for sql in sent if "jsonb_to_recordset" in sql]
        assert len(counted) == 1  # once for all three
        assert "ORDER BY embedding <=> (SELECT v FROM q)" in sent[1]  # the nearest pool
        assert "embedding <=> q.vec" in sent[-1]  # formation's neighbours

        # A small scope of the same store is compared exactly, in the same batch.
        sent.clear()
        await store.nearest_many(
            [(MemoryScope("p", "target"), data.query), (MemoryScope("p", user), data.query)], K
        )
        assert len(sent) == 3  # the small scope counted, then one statement each way
        assert "cosine_distance(embedding, q.vec)" in sent[1]
        assert "embedding <=> q.vec" in sent[2]

        scope_filter = [memories.c.personality_id == "p", memories.c.user_id == "target"]
        # EXPLAINed on the engine's own connections: no binary vector codec, the text form.
        search = {"vec": str(data.query), "pid": "p", "uids": ["target"], "nk": K, "known": []}
        async with engine.connect() as conn:
            plans = [
                await _plan(
                    conn, _sql(nearest_select(scope_filter, data.query, K, exact=False), conn)
                ),
                await _plan(conn, _candidates_sql(**_ONLY_NEAREST, exact=False).text, search),
                await _plan(conn, _nearest_sql(**_NO_WINDOW, exact=False).text, search),
                await _plan(
                    conn,
                    _NEAREST_MANY_HNSW.text,
                    {"pids": ["p"], "uids": ["target"], "vecs": [data.query], "k": K},
                ),
            ]
        assert all(HNSW in plan for plan in plans), plans
    finally:
        await engine.dispose()


async def test_a_large_users_fresh_window_is_counted_from_the_fresh_point(
    memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large user who starts fresh: the search reads only the memories from the fresh
    point, so it counts those (again at once: setting the mode forgets the count), and a
    window that small is compared exactly; through the index, a filter that selective
    leaves the nearest pool short."""
    from datetime import UTC, datetime

    from tzurot.memory.domain import MemoryMode

    data = _one_percent()
    target = [row for row in data.rows if row["user_id"] == "target"]
    recent = [row["id"] for row in target[:3]]
    engine = create_engine(memory_url, server_settings={"enable_seqscan": "off"})
    try:
        store = await _seeded_store(
            engine, data, large_scope=LargeScope(limit=len(target), walk=0, share=0.005)
        )
        async with engine.begin() as conn:
            dated = sa.update(memories).where(memories.c.user_id == "target")
            await conn.execute(dated.values(created_at=datetime(2024, 1, 1, tzinfo=UTC)))
            await conn.execute(
                sa.update(memories)
                .where(memories.c.id.in_(recent))
                .values(created_at=datetime(2025, 1, 1, tzinfo=UTC))
            )
        sent = _recorded_statements(monkeypatch)

        async def search() -> set[str]:
            sent.clear()
            found = await store.candidates(
                "p", ["target"], [], data.query, nearest_k=K, keyword_k=0, fresh_for="target"
            )
            return {c.id for c in found}

        assert len(await search()) == K  # not fresh: the whole scope, large
        assert "ORDER BY embedding <=> (SELECT v FROM q)" in sent[-1]
        await store.set_mode(
            "p", "target", MemoryMode(fresh_since=datetime(2024, 6, 1, tzinfo=UTC))
        )
        assert await search() == {str(memory_id) for memory_id in recent}
        assert "jsonb_to_recordset" in sent[0]  # counted again, from the fresh point
        assert "ORDER BY cosine_distance(embedding, (SELECT v FROM q))" in sent[-1]
        assert await search() == {str(memory_id) for memory_id in recent}
        assert len(sent) == 1  # remembered
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("rule", "exact"),
    [
        pytest.param(LargeScope(limit=20, walk=0, share=0.05), True, id="under-its-share"),
        pytest.param(LargeScope(limit=20, walk=1.0, share=0), True, id="dearer-to-walk"),
        pytest.param(LargeScope(limit=20, walk=0.1, share=0), False, id="cheaper-to-walk"),
    ],
)
async def test_a_scope_past_the_limit_is_large_only_for_its_table(
    memory_url: str, monkeypatch: pytest.MonkeyPatch, rule: LargeScope, exact: bool
) -> None:
    """The target's 20 memories of 2,000 (1 %) against the table's estimate, in the count
    statement: under a minimum share of 5 %, or with sqrt(walk * 2,000) = 45 needed, it is
    compared exactly, and its nearest are numpy's; with 14 needed it is large."""
    data = _one_percent()
    engine = create_engine(memory_url, server_settings={"enable_seqscan": "off"})
    try:
        store = await _seeded_store(engine, data, large_scope=rule)
        sent = _recorded_statements(monkeypatch)
        found = await store.candidates("p", ["target"], [], data.query, nearest_k=K, keyword_k=0)
        assert "reltuples" in sent[0]
        by_index = "ORDER BY embedding <=> (SELECT v FROM q)" in sent[-1]
        assert by_index is not exact
        if exact:
            assert {c.id for c in found} == set(data.exact)
            (near,) = await store.nearest_many([(MemoryScope("p", "target"), data.query)], K)
            assert [n.id for n in near] == data.exact
            assert "cosine_distance(embedding, q.vec)" in sent[-1]
    finally:
        await engine.dispose()


def _recorded_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every statement sent through tzurot.db.direct from now on, in order."""
    sent: list[str] = []
    run = direct._run

    async def recorded(engine: Any, statement: Any, params: Any, method: str) -> Any:
        sent.append(statement.prepare(engine.dialect, params)[0])
        return await run(engine, statement, params, method)

    monkeypatch.setattr(direct, "_run", recorded)
    return sent


_NO_WINDOW = {"before": False, "since": False, "fresh": False}
_ONLY_NEAREST = {"nearest": True, "matching": False, **_NO_WINDOW}


async def _plan(conn: Any, sql: str, params: dict[str, Any] | None = None) -> str:
    return "\n".join((await conn.execute(sa.text("explain " + sql), params or {})).scalars())


def _sql(stmt: sa.Select[tuple[object]], conn: object) -> str:
    return str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]


async def test_candidates_are_both_pools_in_one_statement(
    memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`candidates`: the k nearest and the k best full-text matches, each once, in the
    scope and window only; the user's fresh point bounds it when asked."""
    from datetime import UTC, datetime

    from sqlalchemy import event

    from tzurot.memory.domain import MemoryMode

    def unit(axis: int, other: int = -1, mix: float = 0.0) -> list[float]:
        vector = [0.0] * 384
        vector[axis] = 1.0 - mix
        if other >= 0:
            vector[other] = mix
        return vector

    old = datetime(2023, 5, 1, tzinfo=UTC)
    new = datetime(2024, 5, 1, tzinfo=UTC)
    rows = [
        ("close", "Alice: the weather is grey", unit(0), new),
        ("near", "Alice: a grey morning", unit(0, 1, 0.3), new),
        ("far", "Alice: my dog Pixel ran off", unit(5), new),
        ("old", "Alice: Pixel as a puppy", unit(0), old),
    ]
    engine = create_engine(memory_url)
    try:
        store = PostgresMemoryStore(engine)
        ids = {}
        for name, text, vector, when in rows:
            memory = await store.insert(
                MemoryScope("p", "alice"),
                text=text,
                embedding=vector,
                sector="episodic",
                salience=0.5,
                created_at=when,
            )
            ids[memory.id] = name
        await store.insert(
            MemoryScope("p", "bob"),
            text="Bob: Pixel",
            embedding=unit(0),
            sector="episodic",
            salience=0.5,
        )
        statements: list[str] = []
        event.listen(
            engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
        )
        run_direct = direct._run

        full_text_sent = asyncio.Event()

        async def counted(engine: Any, statement: Any, params: Any, method: str) -> Any:
            sql = statement.prepare(engine.dialect, params)[0]
            statements.append(sql)
            if "AS vector) AS v" not in sql:  # without the query's vector
                full_text_sent.set()
            return await run_direct(engine, statement, params, method)

        monkeypatch.setattr(direct, "_run", counted)  # statements sent through tzurot.db.direct
        query = unit(0)

        def embedding_after_full_text() -> Coroutine[Any, Any, list[float]]:
            """The query's vector, given only once a full-text pool's statement is sent."""
            full_text_sent.clear()

            async def embedded() -> list[float]:
                await asyncio.wait_for(full_text_sent.wait(), 5)
                return query

            return embedded()

        async def names(on: PostgresMemoryStore = store, **kw: object) -> dict[str, float]:
            """The candidates, the vector known (one statement); the same candidates when it
            is still being computed (the full-text pool first, when there are words)."""
            hits = await on.candidates("p", ["alice", ""], ["pixel"], query, **kw)  # type: ignore[arg-type]
            found = {ids[h.memory.id]: round(h.cosine, 3) for h in hits}
            later = await on.candidates(
                "p",
                ["alice", ""],
                ["pixel"],
                embedding_after_full_text() if kw.get("keyword_k") else asyncio.sleep(0, query),
                **kw,  # type: ignore[arg-type]
            )
            assert {ids[h.memory.id]: round(h.cosine, 3) for h in later} == found
            # Each memory as read, whichever statement read its columns.
            assert {h.id: h.memory for h in later} == {h.id: h.memory for h in hits}
            return found

        found = await names(nearest_k=2, keyword_k=2)
        # Two nearest (close, old) and the two full-text matches (far, old), old once.
        assert set(found) == {"close", "old", "far"}
        assert found["close"] == 1.0
        assert found["far"] == 0.0
        # The scope's first search counts it (then not again for ten minutes). The vector
        # known: one statement. Still being computed: the full-text pool's rows first (the
        # vector waited for it), then the nearest pool's others and the full-text rows'
        # distances.
        assert len(statements) == 4
        assert "jsonb_to_recordset" in statements[0]
        assert "AS vector) AS v" in statements[1]  # the query's vector
        assert "AS vector) AS v" not in statements[2]
        assert "ts_rank" in statements[2]
        assert "AS vector) AS v" in statements[3]
        # A search's result is the candidate's memory with its score, built once.
        for hit in await store.candidates(
            "p", ["alice"], ["pixel"], query, nearest_k=2, keyword_k=2
        ):
            result = hit.scored(0.25)
            assert result == dataclasses.replace(hit.memory, score=0.25)
            assert hit.scored(0.5).score == 0.5  # also once its memory was built
        assert set(await names(nearest_k=0, keyword_k=5)) == {"far", "old"}
        assert set(await names(nearest_k=1, keyword_k=0)) <= {"close", "old"}
        assert await names(nearest_k=0, keyword_k=0) == {}
        assert set(await names(nearest_k=5, keyword_k=5, created_since=new)) == {
            "close",
            "near",
            "far",
        }
        await store.set_mode("p", "alice", MemoryMode(None, new))
        assert set(await names(nearest_k=5, keyword_k=5, fresh_for="alice")) == {
            "close",
            "near",
            "far",
        }
        assert set(await names(nearest_k=5, keyword_k=5, created_before=new)) == {"old"}
        # More nearest candidates than the session's ef_search: exact, so all of them.
        narrow = PostgresMemoryStore(engine, ef_search=1)
        assert set(await names(on=narrow, nearest_k=2, keyword_k=2)) == {"close", "old", "far"}

        # A full-text match superseded between the two statements is no candidate, as it
        # would be none in the one statement.
        far, close = (next(i for i, n in ids.items() if n == name) for name in ("far", "close"))

        def superseding_after_full_text() -> Coroutine[Any, Any, list[float]]:
            full_text_sent.clear()

            async def embedded() -> list[float]:
                await asyncio.wait_for(full_text_sent.wait(), 5)
                async with engine.begin() as conn:
                    await conn.execute(
                        sa.update(memories)
                        .where(memories.c.id == uuid.UUID(far))
                        .values(superseded_by=uuid.UUID(close))
                    )
                return query

            return embedded()

        later = await store.candidates(
            "p", ["alice", ""], ["pixel"], superseding_after_full_text(), nearest_k=2, keyword_k=2
        )
        assert {ids[h.id] for h in later} == {"close", "old"}
    finally:
        await engine.dispose()


async def test_full_text_pool_ranks_by_the_query_words_a_memory_holds(memory_url: str) -> None:
    """The full-text pool (ts_rank over an OR of the query's words) keeps, within its limit,
    the memories holding more of the query's words, then those saying a word more often,
    among many that match only the speaker's name; the same under a generic plan (the
    statement is prepared: the vector and the tsquery are made once, not per row)."""
    vector = [0.0] * 384
    vector[0] = 1.0
    texts = [f"Caroline: filler line number {n}" for n in range(30)] + [
        "Caroline: I adopted a puppy last week",
        "Melanie: we adopted nothing",
        "Melanie: a shadow, another shadow, shadow everywhere",
        "Melanie: one shadow",
    ]
    for plan in ("auto", "force_generic_plan"):
        engine = create_engine(memory_url, server_settings={"plan_cache_mode": plan})
        try:
            store = PostgresMemoryStore(engine)
            if plan == "auto":
                for text in texts:
                    await store.insert(
                        MemoryScope("p", "alice"),
                        text=text,
                        embedding=vector,
                        sector="episodic",
                        salience=0.5,
                    )
            for _ in range(7):  # past the five custom plans of a prepared statement
                both = await store.candidates(
                    "p", ["alice"], ["adopt", "caroline"], vector, nearest_k=0, keyword_k=1
                )
                assert [hit.text for hit in both] == ["Caroline: I adopted a puppy last week"]
                often = await store.candidates(
                    "p", ["alice"], ["shadow"], vector, nearest_k=0, keyword_k=1
                )
                assert [hit.text for hit in often] == [
                    "Melanie: a shadow, another shadow, shadow everywhere"
                ]
                assert {round(hit.cosine, 3) for hit in both + often} == {1.0}
        finally:
            await engine.dispose()


async def test_a_failed_full_text_pool_stops_the_embedding_it_ran_beside(
    memory_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full-text pool is read while the query embeds: when that read fails, the search
    fails with its error and the embedding is cancelled, not left running."""
    engine = create_engine(memory_url)
    try:
        store = PostgresMemoryStore(engine)

        async def refused(*_args: object) -> None:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(direct, "_run", refused)

        async def slow_embedding() -> list[float]:
            await asyncio.sleep(30)
            return [1.0] + [0.0] * 383

        embedding = asyncio.ensure_future(slow_embedding())
        with pytest.raises(RuntimeError, match="went away"):
            await store.candidates("p", ["alice"], ["pixel"], embedding, nearest_k=2, keyword_k=2)
        await asyncio.sleep(0)
        assert embedding.cancelled()
    finally:
        await engine.dispose()
