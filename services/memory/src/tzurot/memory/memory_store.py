"""Memory's Postgres store for long-term memory: memories, waypoints, modes, the outbox.

Vector search runs on the HNSW (cosine) index, always filtered by scope, with pgvector
0.8's iterative scan (`hnsw.iterative_scan = relaxed_order`) so a selective filter still
fills k rows; results are re-sorted by distance here (relaxed order may be slightly off).
Effective salience is computed in SQL: the stored salience decayed by the sector's daily
rate for the days since `decayed_at`.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from tzurot.db.engine import autocommit
from tzurot.memory.domain import Hit, MemoryMode, MemoryScope, MemoryStats, StoredMemory
from tzurot.memory.embedding import Vector
from tzurot.memory.sectors import DECAY_PER_DAY
from tzurot.memory.tables import (
    formation_outbox,
    memories,
    memory_modes,
    memory_uses,
    turns,
    waypoints,
)

_COLUMNS = (
    memories.c.id,
    memories.c.personality_id,
    memories.c.user_id,
    memories.c.text,
    memories.c.sector,
    memories.c.salience,
    memories.c.created_at,
    memories.c.last_accessed_at,
    memories.c.source_turn_ids,
    memories.c.tags,
    memories.c.superseded_by,
    memories.c.context,
)

_DAYS_SINCE_DECAY = sa.func.extract("epoch", sa.func.now() - memories.c.decayed_at) / 86400.0
_RATE = sa.case(
    *((memories.c.sector == sector.value, rate) for sector, rate in DECAY_PER_DAY.items()),
    else_=0.0,
)
EFFECTIVE_SALIENCE = memories.c.salience * sa.func.exp(-_RATE * _DAYS_SINCE_DECAY)
"""Salience now: decay since the last consolidation or access applied on read."""


def memory_columns() -> tuple[sa.Column[Any], ...]:
    """The columns `stored_memory` reads (no embedding)."""
    return _COLUMNS


def stored_memory(row: Any) -> StoredMemory:
    return _memory(row)


def _with_turns(extra: Sequence[str]) -> sa.ColumnElement[list[str]]:
    """The updated row's own source turns plus `extra`, distinct.

    The subquery is correlated to the row being updated: uncorrelated, it would read
    `FROM memory.memories` and collect every memory's turns in the table.
    """
    union = sa.func.unnest(sa.func.array_cat(memories.c.source_turn_ids, list(extra)))
    return sa.func.array(sa.select(union).distinct().correlate(memories).scalar_subquery())


def _with_tags(extra: Sequence[str]) -> sa.ColumnElement[list[str]]:
    """The updated row's own tags plus `extra`, distinct (correlated, as _with_turns)."""
    union = sa.func.unnest(sa.func.array_cat(memories.c.tags, list(extra)))
    return sa.func.array(sa.select(union).distinct().correlate(memories).scalar_subquery())


_COLUMN_NAMES = ", ".join(c.name for c in _COLUMNS)
_NEAREST_MANY = sa.text(
    "SELECT q.idx, m.*"  # noqa: S608 - the column names are the table's own; values are bound
    " FROM unnest(CAST(:pids AS text[]), CAST(:uids AS text[]), CAST(:vecs AS text[]))"
    " WITH ORDINALITY AS q(pid, uid, vec, idx)"
    " CROSS JOIN LATERAL ("
    f"  SELECT {_COLUMN_NAMES},"
    "   embedding <=> CAST(q.vec AS vector) AS distance"
    "  FROM memory.memories"
    "  WHERE personality_id = q.pid AND user_id = q.uid AND superseded_by IS NULL"
    "  ORDER BY embedding <=> CAST(q.vec AS vector) LIMIT :k) AS m"
)
"""`nearest` for many (scope, vector) rows at once: the HNSW scan runs per row (LATERAL)."""


def _vector_text(vector: Vector) -> str:
    """pgvector's text form of `vector`, for CAST(:vec AS vector) in a text statement."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


@functools.lru_cache(maxsize=64)
def _candidates_sql(
    *, nearest: bool, matching: bool, before: bool, since: bool, fresh: bool
) -> sa.TextClause:
    """`candidates`' statement: text SQL (built once per shape), so a search spends no
    time composing and compiling a query, and its rows skip the ORM types' processing."""
    scope = [
        "personality_id = :pid",
        "user_id = ANY(CAST(:uids AS text[]))",
        "superseded_by IS NULL",
    ]
    if before:
        scope.append("created_at < :before")
    if since:
        scope.append("created_at >= :since")
    if fresh:
        scope.append(
            "created_at >= COALESCE((SELECT fresh_since FROM memory.memory_modes"
            " WHERE personality_id = :pid AND user_id = :fresh_uid), '-infinity')"
        )
    where = " AND ".join(scope)
    pools = []
    if nearest:
        pools.append(
            f"(SELECT id FROM memory.memories WHERE {where}"  # noqa: S608 - fixed fragments
            " ORDER BY embedding <=> CAST(:vec AS vector) LIMIT :nk)"
        )
    if matching:
        pools.append(
            f"(SELECT id FROM memory.memories WHERE {where}"  # noqa: S608 - fixed fragments
            " AND search_text @@ to_tsquery('english', :tsq)"
            " ORDER BY ts_rank_cd(search_text, to_tsquery('english', :tsq)) DESC LIMIT :kk)"
        )
    sql = (
        f"SELECT {_COLUMN_NAMES}, embedding <=> CAST(:vec AS vector) AS distance"  # noqa: S608
        f" FROM memory.memories WHERE id IN ({' UNION '.join(pools)})"
    )
    return sa.text(sql)


def _memory(row: Any, score: float = 0.0) -> StoredMemory:
    return StoredMemory(
        id=str(row.id),
        personality_id=row.personality_id,
        user_id=row.user_id,
        text=row.text,
        sector=row.sector,
        salience=float(row.salience),
        created_at=row.created_at,
        last_accessed_at=row.last_accessed_at,
        source_turn_ids=tuple(row.source_turn_ids),
        score=score,
        tags=tuple(row.tags or ()),
        superseded_by=str(row.superseded_by or ""),
        context=row.context,
    )


def _ids(ids: Iterable[str]) -> list[uuid.UUID]:
    return [uuid.UUID(value) for value in ids]


def _scope_filter(
    personality_id: str,
    user_ids: Sequence[str],
    created_before: datetime | None = None,
    created_since: datetime | None = None,
) -> list[sa.ColumnElement[bool]]:
    where = [
        memories.c.personality_id == personality_id,
        memories.c.user_id.in_(user_ids),
        memories.c.superseded_by.is_(None),
    ]
    if created_before is not None:
        where.append(memories.c.created_at < created_before)
    if created_since is not None:
        where.append(memories.c.created_at >= created_since)
    return where


async def _iterative_scan(conn: AsyncConnection, ef_search: int) -> None:
    """Settings for this transaction only: a wider candidate list than the session's."""
    await conn.execute(sa.text("select set_config('hnsw.iterative_scan', 'relaxed_order', true)"))
    await conn.execute(
        sa.text("select set_config('hnsw.ef_search', :ef, true)"), {"ef": str(ef_search)}
    )


def _hnsw_session(engine: AsyncEngine, ef_search: int) -> None:
    """Every connection of the pool scans HNSW iteratively with `ef_search` candidates.

    Set once per connection, on its first checkout (it stays for the session: the pool
    resets a returned connection with ROLLBACK, not DISCARD), so a vector search is one
    statement with no transaction around it, instead of BEGIN, two set_config, the
    query and COMMIT.
    """
    key = f"tzurot_hnsw_{ef_search}"

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _settings(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        if record.info.get(key):
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SET hnsw.iterative_scan = relaxed_order")
            cursor.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        finally:
            cursor.close()
        dbapi_connection.commit()  # a SET in a rolled-back transaction would be undone
        record.info[key] = True


@dataclass(frozen=True)
class FormedRow:
    """A memory formation decided to insert."""

    id: str
    scope: MemoryScope
    text: str
    vector: Vector
    sector: str
    salience: float
    source_turn_ids: tuple[str, ...]
    created_at: datetime | None
    context: str = ""
    accessed_at: datetime | None = None
    """Set when a later memory of the same batch merged into it (as `merge` would)."""


def _edge_key(row: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID]:
    return row["src_id"], row["dst_id"]


class PostgresMemoryStore:
    """All of memory's long-term SQL."""

    def __init__(self, engine: AsyncEngine, *, ef_search: int = 100) -> None:
        self._engine = engine
        # Lone statements need no BEGIN/COMMIT around them (tzurot.db.engine.autocommit).
        self._auto = autocommit(engine)
        self._ef_search = ef_search
        _hnsw_session(engine, ef_search)

    async def insert(
        self,
        scope: MemoryScope,
        *,
        text: str,
        embedding: Vector,
        sector: str,
        salience: float,
        source_turn_ids: Sequence[str] = (),
        created_at: datetime | None = None,
        memory_id: str | None = None,
        tags: Sequence[str] = (),
        context: str = "",
    ) -> StoredMemory:
        """Inserts one memory; with `memory_id` an existing row of that id wins (returned
        unchanged), so a caller-named memory is stored once."""
        values: dict[str, Any] = {
            "tags": list(tags),
            "context": context,
            "personality_id": scope.personality_id,
            "user_id": scope.user_id,
            "text": text,
            "embedding": embedding,
            "sector": sector,
            "salience": salience,
            "source_turn_ids": list(source_turn_ids),
        }
        if created_at is not None:
            values |= {"created_at": created_at, "last_accessed_at": created_at}
            values["decayed_at"] = created_at
        if memory_id is None:
            async with self._auto.begin() as conn:
                stmt = memories.insert().values(values).returning(*_COLUMNS)
                row = (await conn.execute(stmt)).one()
            return _memory(row)
        stmt = (
            insert(memories)
            .values(values | {"id": memory_id})
            .on_conflict_do_nothing(index_elements=[memories.c.id])
            .returning(*_COLUMNS)
        )
        async with self._engine.begin() as conn:
            inserted = (await conn.execute(stmt)).one_or_none()
            if inserted is None:
                inserted = (
                    await conn.execute(sa.select(*_COLUMNS).where(memories.c.id == memory_id))
                ).one()
        return _memory(inserted)

    async def get(self, memory_id: str) -> StoredMemory | None:
        async with self._auto.connect() as conn:
            row = (
                await conn.execute(sa.select(*_COLUMNS).where(memories.c.id == memory_id))
            ).one_or_none()
        return None if row is None else _memory(row)

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk insert of prepared rows (benchmarks and imports)."""
        async with self._engine.begin() as conn:
            await conn.execute(memories.insert(), list(rows))

    async def nearest(
        self,
        personality_id: str,
        user_ids: Sequence[str],
        embedding: Vector,
        k: int,
        *,
        sector: str | None = None,
        created_before: datetime | None = None,
        created_since: datetime | None = None,
    ) -> list[Hit]:
        """The k memories of the scope closest to `embedding`, closest first."""
        distance = memories.c.embedding.cosine_distance(embedding)
        where = _scope_filter(personality_id, user_ids, created_before, created_since)
        if sector is not None:
            where.append(memories.c.sector == sector)
        stmt = sa.select(*_COLUMNS, distance.label("distance")).where(*where)
        stmt = stmt.order_by(distance).limit(k)
        if k <= self._ef_search:  # the session's settings do
            async with self._auto.connect() as conn:
                rows = (await conn.execute(stmt)).all()
        else:
            async with self._engine.begin() as conn:
                await _iterative_scan(conn, k)
                rows = (await conn.execute(stmt)).all()
        hits = [Hit(_memory(row), 1.0 - float(row.distance)) for row in rows]
        return sorted(hits, key=lambda hit: -hit.cosine)

    async def nearest_many(
        self, queries: Sequence[tuple[MemoryScope, Vector]], k: int
    ) -> list[list[Hit]]:
        """`nearest(scope, [user], vector, k)` for each query, in one statement (formation's
        batch): a LATERAL join runs the HNSW scan once per query row."""
        if not queries:
            return []
        if k > self._ef_search:
            return [
                await self.nearest(scope.personality_id, [scope.user_id], vector, k)
                for scope, vector in queries
            ]
        params = {
            "pids": [scope.personality_id for scope, _v in queries],
            "uids": [scope.user_id for scope, _v in queries],
            "vecs": ["[" + ",".join(repr(float(x)) for x in v) + "]" for _s, v in queries],
            "k": k,
        }
        found: list[list[Hit]] = [[] for _ in queries]
        async with self._auto.connect() as conn:
            for row in await conn.execute(_NEAREST_MANY, params):
                found[int(row.idx) - 1].append(Hit(_memory(row), 1.0 - float(row.distance)))
        return [sorted(hits, key=lambda hit: -hit.cosine) for hits in found]

    async def insert_formed(self, rows: Sequence[FormedRow]) -> None:
        """Inserts formation's new memories (ids chosen by the caller) in one statement."""
        if not rows:
            return
        values = [
            {
                "id": uuid.UUID(row.id),
                "personality_id": row.scope.personality_id,
                "user_id": row.scope.user_id,
                "text": row.text,
                "embedding": row.vector,
                "sector": row.sector,
                "salience": row.salience,
                "source_turn_ids": list(row.source_turn_ids),
                "tags": [],
                "context": row.context,
            }
            | ({} if row.created_at is None else {"created_at": row.created_at})
            | (
                {}
                if (accessed := row.accessed_at or row.created_at) is None
                else {"last_accessed_at": accessed, "decayed_at": accessed}
            )
            for row in rows
        ]
        # Rows with and without created_at cannot share one VALUES list; at most two.
        async with self._auto.begin() as conn:
            for keys in {tuple(sorted(v)) for v in values}:
                group = [v for v in values if tuple(sorted(v)) == keys]
                await conn.execute(memories.insert().values(group))

    async def keyword_search(
        self,
        personality_id: str,
        user_ids: Sequence[str],
        words: Sequence[str],
        embedding: Vector,
        k: int,
        *,
        created_before: datetime | None = None,
        created_since: datetime | None = None,
    ) -> list[Hit]:
        """Up to k memories of the scope matching any of `words` (full text), best first."""
        if not words:
            return []
        query = sa.func.to_tsquery("english", " | ".join(words))
        rank = sa.func.ts_rank_cd(memories.c.search_text, query)
        distance = memories.c.embedding.cosine_distance(embedding)
        stmt = (
            sa.select(*_COLUMNS, distance.label("distance"))
            .where(
                *_scope_filter(personality_id, user_ids, created_before, created_since),
                memories.c.search_text.op("@@")(query),
            )
            .order_by(rank.desc())
            .limit(k)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Hit(_memory(row), 1.0 - float(row.distance)) for row in rows]

    async def candidates(
        self,
        personality_id: str,
        user_ids: Sequence[str],
        words: Sequence[str],
        embedding: Vector,
        *,
        nearest_k: int,
        keyword_k: int,
        created_before: datetime | None = None,
        created_since: datetime | None = None,
        fresh_for: str = "",
    ) -> list[Hit]:
        """A search's candidates in one statement: the `nearest_k` closest memories of the
        scope (as `nearest`) and its `keyword_k` best full-text matches for any of `words`
        (as `keyword_search`), each once, with its cosine to `embedding`. A pool of 0 is
        not read. With `fresh_for` (a user id) the user's fresh point, if set, also bounds
        the window (read in the same statement, not by a `mode` call first)."""
        nearest = nearest_k > 0
        matching = keyword_k > 0 and bool(words)
        if not (nearest or matching):
            return []
        params: dict[str, Any] = {
            "pid": personality_id,
            "uids": list(user_ids),
            "vec": _vector_text(embedding),
        }
        if nearest:
            params["nk"] = nearest_k
        if matching:
            params |= {"kk": keyword_k, "tsq": " | ".join(words)}
        if created_before is not None:
            params["before"] = created_before
        if created_since is not None:
            params["since"] = created_since
        if fresh_for:
            params["fresh_uid"] = fresh_for
        stmt = _candidates_sql(
            nearest=nearest,
            matching=matching,
            before=created_before is not None,
            since=created_since is not None,
            fresh=bool(fresh_for),
        )
        if nearest_k <= self._ef_search:  # the session's settings do
            async with self._auto.connect() as conn:
                rows = (await conn.execute(stmt, params)).all()
        else:
            async with self._engine.begin() as conn:
                await _iterative_scan(conn, nearest_k)
                rows = (await conn.execute(stmt, params)).all()
        return [Hit(_memory(row), 1.0 - float(row.distance)) for row in rows]

    async def fetch(self, ids: Sequence[str], embedding: Vector) -> list[Hit]:
        """The given memories, with their cosine similarity to `embedding`."""
        if not ids:
            return []
        distance = memories.c.embedding.cosine_distance(embedding)
        stmt = sa.select(*_COLUMNS, distance.label("distance")).where(memories.c.id.in_(_ids(ids)))
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [Hit(_memory(row), 1.0 - float(row.distance)) for row in rows]

    async def formed_turns(self, scope: MemoryScope, turn_ids: Sequence[str]) -> set[str]:
        """Which of these turns the scope already holds a memory formed from."""
        given = list(turn_ids)
        found = sa.func.unnest(memories.c.source_turn_ids).label("turn_id")
        inner = (
            sa.select(found)
            .where(
                memories.c.personality_id == scope.personality_id,
                memories.c.user_id == scope.user_id,
                memories.c.source_turn_ids.overlap(given),
            )
            .subquery()
        )
        stmt = sa.select(inner.c.turn_id).where(inner.c.turn_id.in_(given)).distinct()
        async with self._auto.connect() as conn:
            return set(await conn.scalars(stmt))

    async def merge(
        self,
        target_id: str,
        source_turn_ids: Sequence[str],
        salience: float,
        tags: Sequence[str] = (),
    ) -> StoredMemory:
        """A near-duplicate arrived: the target absorbs its turns, tags, salience and access."""
        stmt = (
            sa.update(memories)
            .where(memories.c.id == uuid.UUID(target_id))
            .values(
                source_turn_ids=_with_turns(source_turn_ids),
                tags=_with_tags(tags),
                salience=sa.func.least(1.0, sa.func.greatest(EFFECTIVE_SALIENCE, salience)),
                last_accessed_at=sa.func.now(),
                decayed_at=sa.func.now(),
            )
            .returning(*_COLUMNS)
        )
        async with self._auto.begin() as conn:
            return _memory((await conn.execute(stmt)).one())

    async def absorb(self, keep_id: str, drop_id: str) -> None:
        """Consolidation's merge: `keep` takes `drop`'s turns, salience and edges; `drop` goes."""
        keep, drop = uuid.UUID(keep_id), uuid.UUID(drop_id)
        async with self._engine.begin() as conn:
            dropped = (
                await conn.execute(
                    sa.delete(memories)
                    .where(memories.c.id == drop)
                    .returning(memories.c.source_turn_ids, EFFECTIVE_SALIENCE.label("salience"))
                )
            ).first()
            if dropped is None:
                return
            await conn.execute(
                sa.update(memories)
                .where(memories.c.id == keep)
                .values(
                    source_turn_ids=_with_turns(dropped.source_turn_ids),
                    salience=sa.func.least(
                        1.0, sa.func.greatest(EFFECTIVE_SALIENCE, float(dropped.salience))
                    ),
                )
            )

    async def neighbours(self, ids: Sequence[str]) -> list[tuple[str, str, float]]:
        """Edges (src, dst, weight) leaving any of `ids`."""
        if not ids:
            return []
        stmt = sa.select(waypoints.c.src_id, waypoints.c.dst_id, waypoints.c.weight).where(
            waypoints.c.src_id.in_(_ids(ids))
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(str(r.src_id), str(r.dst_id), float(r.weight)) for r in rows]

    async def link(self, pairs: Iterable[tuple[str, str]], weight: float) -> int:
        """Edges in both directions with `weight`; an existing edge is left as it is."""
        rows = []
        for a, b in pairs:
            if a == b:
                continue
            rows += [
                {"src_id": uuid.UUID(a), "dst_id": uuid.UUID(b), "weight": weight},
                {"src_id": uuid.UUID(b), "dst_id": uuid.UUID(a), "weight": weight},
            ]
        if not rows:
            return 0
        # Deterministic order: concurrent upserts of the same pairs cannot deadlock.
        rows = sorted({(r["src_id"], r["dst_id"]): r for r in rows}.values(), key=_edge_key)
        stmt = (
            insert(waypoints)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[waypoints.c.src_id, waypoints.c.dst_id])
        )
        async with self._auto.begin() as conn:
            await conn.execute(stmt)
        return len(rows) // 2

    async def reinforce_used(self, grace: timedelta, boost: float) -> int:
        """Boosts, once, the memories used by answers delivered at least `grace` ago whose
        exchange still stands (a deleted or regenerated answer's turns are gone), then
        forgets those uses. Returns how many memories were reinforced."""
        due = (
            sa.delete(memory_uses)
            .where(memory_uses.c.created_at < sa.func.now() - grace)
            .returning(memory_uses.c.job_id, memory_uses.c.memory_ids)
            .cte("due")
        )
        kept = (
            sa.select(sa.func.unnest(due.c.memory_ids).label("id"))
            .where(sa.exists().where(turns.c.job_id == due.c.job_id, turns.c.role == "assistant"))
            .cte("kept")
        )
        stmt = (
            sa.update(memories)
            .where(memories.c.id.in_(sa.select(kept.c.id)))
            .values(
                salience=sa.func.least(1.0, EFFECTIVE_SALIENCE + boost * (1 - EFFECTIVE_SALIENCE)),
                last_accessed_at=sa.func.now(),
                decayed_at=sa.func.now(),
            )
            .returning(memories.c.id)
        )
        async with self._auto.begin() as conn:
            return len((await conn.execute(stmt)).all())

    async def drop_weak(self, personality_id: str, user_id: str, threshold: float) -> int:
        stmt = sa.delete(memories).where(
            memories.c.personality_id == personality_id,
            memories.c.user_id == user_id,
            threshold > EFFECTIVE_SALIENCE,
        )
        async with self._auto.begin() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def stats(self, personality_id: str, user_id: str) -> MemoryStats:
        stmt = (
            sa.select(
                memories.c.sector,
                sa.func.count(),
                sa.func.min(memories.c.created_at),
                sa.func.max(memories.c.created_at),
            )
            .where(memories.c.personality_id == personality_id, memories.c.user_id == user_id)
            .group_by(memories.c.sector)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return MemoryStats(
            total=sum(int(row[1]) for row in rows),
            sectors={row[0]: int(row[1]) for row in rows},
            oldest=min((row[2] for row in rows), default=None),
            newest=max((row[3] for row in rows), default=None),
        )

    async def user_memories(self, user_id: str) -> list[StoredMemory]:
        """Every memory of the user (any personality; not the shared lore), oldest first."""
        stmt = (
            sa.select(*_COLUMNS)
            .where(memories.c.user_id == user_id)
            .order_by(memories.c.created_at, memories.c.id)
        )
        async with self._auto.connect() as conn:
            return [_memory(row) for row in await conn.execute(stmt)]

    async def delete_user(self, user_id: str) -> int:
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(memory_modes).where(memory_modes.c.user_id == user_id))
            result = await conn.execute(sa.delete(memories).where(memories.c.user_id == user_id))
        return int(result.rowcount)

    async def mode(self, personality_id: str, user_id: str) -> MemoryMode:
        stmt = sa.select(memory_modes.c.incognito_until, memory_modes.c.fresh_since).where(
            memory_modes.c.personality_id == personality_id, memory_modes.c.user_id == user_id
        )
        async with self._auto.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return MemoryMode() if row is None else MemoryMode(row[0], row[1])

    async def set_mode(self, personality_id: str, user_id: str, mode: MemoryMode) -> MemoryMode:
        values = {
            "personality_id": personality_id,
            "user_id": user_id,
            "incognito_until": mode.incognito_until,
            "fresh_since": mode.fresh_since,
        }
        stmt = insert(memory_modes).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[memory_modes.c.personality_id, memory_modes.c.user_id],
            set_={"incognito_until": mode.incognito_until, "fresh_since": mode.fresh_since},
        )
        async with self._auto.begin() as conn:
            await conn.execute(stmt)
        return mode

    # Consolidation.

    async def decay_all(self) -> int:
        """Applies pending decay to every memory not decayed for an hour; how many changed."""
        stmt = (
            sa.update(memories)
            .where(memories.c.decayed_at < sa.func.now() - sa.text("interval '1 hour'"))
            .values(salience=EFFECTIVE_SALIENCE, decayed_at=sa.func.now())
        )
        async with self._engine.begin() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def prune_waypoints(self, rate_per_day: float, floor: float) -> int:
        """Edges fade by `rate_per_day` since last reinforced; those under `floor` go."""
        faded = waypoints.c.weight * sa.func.exp(
            -rate_per_day
            * sa.func.extract("epoch", sa.func.now() - waypoints.c.updated_at)
            / 86400.0
        )
        async with self._engine.begin() as conn:
            pruned = await conn.execute(sa.delete(waypoints).where(faded < floor))
            await conn.execute(
                sa.update(waypoints)
                .where(waypoints.c.updated_at < sa.func.now())
                .values(weight=faded, updated_at=sa.func.now())
            )
        return int(pruned.rowcount)

    async def near_duplicates(self, max_distance: float) -> list[tuple[str, str]]:
        """Pairs (older, newer) of one scope and sector closer than `max_distance`."""
        other = memories.alias("other")
        nearest = (
            sa.select(other.c.id, other.c.created_at, other.c.embedding)
            .where(
                other.c.personality_id == memories.c.personality_id,
                other.c.user_id == memories.c.user_id,
                other.c.sector == memories.c.sector,
                other.c.id != memories.c.id,
                other.c.superseded_by.is_(None),
            )
            .order_by(other.c.embedding.cosine_distance(memories.c.embedding))
            .limit(1)
            .lateral("nearest")
        )
        stmt = sa.select(
            memories.c.id, memories.c.created_at, nearest.c.id, nearest.c.created_at
        ).where(
            nearest.c.embedding.cosine_distance(memories.c.embedding) <= max_distance,
            memories.c.superseded_by.is_(None),
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt.join_from(memories, nearest, sa.true()))).all()
        pairs = set()
        for a_id, a_at, b_id, b_at in rows:
            older, newer = (a_id, b_id) if (a_at, str(a_id)) <= (b_at, str(b_id)) else (b_id, a_id)
            pairs.add((str(older), str(newer)))
        return sorted(pairs)

    async def reflection_scopes(self, min_count: int) -> list[MemoryScope]:
        """Scopes holding at least `min_count` episodic memories not yet reflected on."""
        stmt = (
            sa.select(memories.c.personality_id, memories.c.user_id)
            .where(memories.c.sector == "episodic", ~memories.c.reflected)
            .group_by(memories.c.personality_id, memories.c.user_id)
            .having(sa.func.count() >= min_count)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [MemoryScope(row[0], row[1]) for row in rows]

    async def episodic(
        self, scope: MemoryScope
    ) -> tuple[list[StoredMemory], npt.NDArray[np.float32]]:
        """The scope's unreflected episodic memories (oldest first) and their embeddings."""
        stmt = (
            sa.select(*_COLUMNS, memories.c.embedding)
            .where(
                memories.c.personality_id == scope.personality_id,
                memories.c.user_id == scope.user_id,
                memories.c.sector == "episodic",
                ~memories.c.reflected,
            )
            .order_by(memories.c.created_at, memories.c.id)
        )
        async with self._auto.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        vectors = np.array([np.asarray(row.embedding) for row in rows], dtype=np.float32)
        return [_memory(row) for row in rows], vectors

    async def mark_reflected(self, ids: Sequence[str]) -> None:
        stmt = sa.update(memories).where(memories.c.id.in_(_ids(ids))).values(reflected=True)
        async with self._auto.begin() as conn:
            await conn.execute(stmt)

    # The formation outbox.

    async def pending_jobs(self, limit: int) -> list[str]:
        stmt = (
            sa.select(formation_outbox.c.job_id)
            .order_by(formation_outbox.c.created_at)
            .limit(limit)
        )
        async with self._auto.connect() as conn:
            return list(await conn.scalars(stmt))

    @contextlib.asynccontextmanager
    async def claim_jobs(
        self, limit: int, skip: Sequence[str] = ()
    ) -> AsyncIterator[OutboxClaim | None]:
        """Up to `limit` of the oldest outbox jobs no other worker holds (None if none), locked.

        `SELECT … FOR UPDATE SKIP LOCKED` in a transaction held open while the caller forms
        the jobs: another replica skips the rows, so two never form one exchange at once. The
        claim's finish/fail commit with the block; a crash rolls back and frees the rows.
        `skip`: jobs this pass already failed (retried on a later pass, not in a loop).
        """
        stmt = (
            sa.select(formation_outbox.c.job_id)
            .order_by(formation_outbox.c.created_at, formation_outbox.c.job_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if skip:
            stmt = stmt.where(formation_outbox.c.job_id.not_in(list(skip)))
        async with self._engine.begin() as conn:
            job_ids = list(await conn.scalars(stmt))
            yield OutboxClaim(conn, job_ids) if job_ids else None


class OutboxClaim:
    """Locked outbox rows; their transaction commits when the claim's block ends."""

    def __init__(self, conn: AsyncConnection, job_ids: Sequence[str]) -> None:
        self._conn = conn
        self.job_ids = tuple(job_ids)

    async def finish(self, job_ids: Sequence[str]) -> None:
        """These jobs' memories are formed: their rows go."""
        if job_ids:
            await self._conn.execute(
                sa.delete(formation_outbox).where(formation_outbox.c.job_id.in_(list(job_ids)))
            )

    async def fail(self, job_id: str, max_attempts: int) -> bool:
        """Counts a failed attempt; True (and the row deleted) once `max_attempts` is reached."""
        attempts = await self._conn.scalar(
            sa.update(formation_outbox)
            .where(formation_outbox.c.job_id == job_id)
            .values(attempts=formation_outbox.c.attempts + 1)
            .returning(formation_outbox.c.attempts)
        )
        if attempts is not None and attempts >= max_attempts:
            await self.finish([job_id])
            return True
        return False
