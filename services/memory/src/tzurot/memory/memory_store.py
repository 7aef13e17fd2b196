"""Memory's Postgres store for long-term memory: `PostgresMemoryStore`, the one class its
callers use, with a memory's own reads and writes and its links (waypoints) here, and
the rest by job: search_queries.py (reads by vector and full text, search_sql.py their
statements), outbox.py (the formation outbox), maintenance.py (consolidation and pruning),
modes.py (incognito and fresh modes). memory_rows.py has what they share.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from tzurot.db import direct
from tzurot.db.engine import autocommit
from tzurot.memory.domain import MemoryScope, MemoryStats, StoredMemory
from tzurot.memory.embedding import Vector
from tzurot.memory.maintenance import MaintenanceQueries
from tzurot.memory.memory_rows import (
    COLUMNS,
    EFFECTIVE_SALIENCE,
    as_uuids,
    insert_unless,
    stored_memory,
    use_binary_vectors,
)
from tzurot.memory.modes import ModeQueries
from tzurot.memory.outbox import OutboxQueries
from tzurot.memory.scope_size import LargeScope, ScopeSizes
from tzurot.memory.search_queries import SearchQueries
from tzurot.memory.tables import memories, waypoints
from tzurot.memory.tombstones import Forgotten, forgotten_clause


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


def _hnsw_session(engine: AsyncEngine, ef_search: int) -> None:
    """Every connection of the pool scans HNSW iteratively with `ef_search` candidates
    (the near-duplicates pass; a scope's nearest are exact).

    Set once per connection, on its first checkout (it stays for the session: the pool
    resets a returned connection with ROLLBACK, not DISCARD), so an HNSW statement is one
    statement with no transaction around it, instead of BEGIN, two set_config, the
    query and COMMIT. The same on the direct pool's connections (`tzurot.db.direct`).
    """
    key = f"tzurot_hnsw_{ef_search}"

    async def _direct_settings(conn: Any) -> None:  # no transaction: kept for the session
        await conn.execute(
            f"SET hnsw.iterative_scan = relaxed_order; SET hnsw.ef_search = {int(ef_search)}"
        )

    direct.on_connect(engine, _direct_settings)

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


def _edge_key(row: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID]:
    return row["src_id"], row["dst_id"]


class PostgresMemoryStore(SearchQueries, OutboxQueries, MaintenanceQueries, ModeQueries):
    """All of memory's long-term SQL."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ef_search: int = 100,
        large_scope: LargeScope | None = None,
    ) -> None:
        self._engine = engine
        # Lone statements need no BEGIN/COMMIT around them (tzurot.db.engine.autocommit).
        self._auto = autocommit(engine)
        use_binary_vectors(engine)  # the searches' `vector` parameters (memory_rows.py)
        _hnsw_session(engine, ef_search)
        self._sizes = ScopeSizes(self._count_up_to, rule=large_scope)

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
        on_behalf_of: str = "",
    ) -> StoredMemory:
        """Inserts one memory; with `memory_id` an existing row of that id wins (returned
        unchanged), so a caller-named memory is stored once.

        Forgotten (and nothing stored) when the scope's personality or user, or the user it
        is `on_behalf_of`, was forgotten: checked by the insert itself (tombstones.py)."""
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
        gone = forgotten_clause(scope.personality_id, scope.user_id, on_behalf_of)
        if memory_id is None:
            stmt = insert_unless(memories, values, gone).returning(*COLUMNS)
            async with self._auto.begin() as conn:
                row = (await conn.execute(stmt)).one_or_none()
            if row is None:
                raise Forgotten
            return stored_memory(row)
        stmt = (
            insert_unless(memories, values | {"id": uuid.UUID(memory_id)}, gone)
            .on_conflict_do_nothing(index_elements=[memories.c.id])
            .returning(*COLUMNS)
        )
        async with self._engine.begin() as conn:
            inserted = (await conn.execute(stmt)).one_or_none()
            if inserted is None:
                inserted = (
                    await conn.execute(sa.select(*COLUMNS).where(memories.c.id == memory_id))
                ).one_or_none()
        if inserted is None:  # not stored before, and not now: its scope was forgotten
            raise Forgotten
        return stored_memory(inserted)

    async def get(self, memory_id: str) -> StoredMemory | None:
        async with self._auto.connect() as conn:
            row = (
                await conn.execute(sa.select(*COLUMNS).where(memories.c.id == memory_id))
            ).one_or_none()
        return None if row is None else stored_memory(row)

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk insert of prepared rows (benchmarks): no tombstone check, so never for a
        user's or a personality's data (AddMemory and formation check theirs)."""
        async with self._engine.begin() as conn:
            await conn.execute(memories.insert(), list(rows))

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
            .returning(*COLUMNS)
        )
        async with self._auto.begin() as conn:
            return stored_memory((await conn.execute(stmt)).one())

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
            waypoints.c.src_id.in_(as_uuids(ids))
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
            sa.select(*COLUMNS)
            .where(memories.c.user_id == user_id)
            .order_by(memories.c.created_at, memories.c.id)
        )
        async with self._auto.connect() as conn:
            return [stored_memory(row) for row in await conn.execute(stmt)]

    async def ping(self) -> None:
        """One trivial statement: raises unless Postgres answers (formation's check, after
        a failure, of whether the database is down)."""
        async with self._auto.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
