"""Long-term memory's upkeep in SQL: consolidation's decay, fading links, near-duplicates
and reflections, the boost of memories used in kept answers, and weak memories dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import MemoryScope, StoredMemory
from tzurot.memory.embedding import Vector
from tzurot.memory.memory_rows import (
    COLUMNS,
    EFFECTIVE_SALIENCE,
    MIN_EXPONENT,
    as_uuids,
    insert_unless,
    stored_memory,
)
from tzurot.memory.sectors import Sector
from tzurot.memory.tables import memories, memory_uses, turns, waypoints
from tzurot.memory.tombstones import Forgotten, forgotten_clause


class MaintenanceQueries:
    """Consolidation's and pruning's statements (PostgresMemoryStore has them)."""

    _engine: AsyncEngine
    """For the statements that go together in one transaction."""
    _auto: AsyncEngine
    """The pool in autocommit (tzurot.db.engine.autocommit): each statement is its own
    transaction."""

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
            sa.func.greatest(
                -rate_per_day
                * sa.func.extract("epoch", sa.func.now() - waypoints.c.updated_at)
                / 86400.0,
                MIN_EXPONENT,
            )
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
            sa.select(*COLUMNS, memories.c.embedding)
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
        return [stored_memory(row) for row in rows], vectors

    async def mark_reflected(
        self,
        scope: MemoryScope,
        ids: Sequence[str],
        *,
        text: str,
        embedding: Vector,
        salience: float,
        source_turn_ids: Sequence[str],
    ) -> StoredMemory | None:
        """Stores the reflective memory summarising the memories `ids` of `scope` and marks
        them reflected: one transaction, all or nothing.

        None, and nothing kept, unless every one of them still exists unreflected. Two
        consolidation passes at once (gateway's trigger and the CronJob) read the same
        episodes and summarise them both; the first to mark them keeps its summary, and the
        other finds them reflected and keeps none, nor marks the rest of its group (a group
        that overlaps only in part stays to be reflected on by the next pass). So do
        sources deleted meanwhile (their user forgotten): no summary outlives them. The
        rows are locked in id order, so two passes wait for each other and never
        deadlock; READ COMMITTED reads a row again once its lock is free.

        Forgotten (and nothing stored) when the scope's personality or user was forgotten:
        the insert, the transaction's first statement, checks the tombstones
        (tombstones.py)."""
        wanted = set(as_uuids(ids))
        values: dict[str, Any] = {
            "personality_id": scope.personality_id,
            "user_id": scope.user_id,
            "text": text,
            "embedding": embedding,
            "sector": Sector.REFLECTIVE.value,
            "salience": salience,
            "source_turn_ids": list(source_turn_ids),
        }
        gone = forgotten_clause(scope.personality_id, scope.user_id)
        summary = insert_unless(memories, values, gone).returning(*COLUMNS)
        unreflected = (
            sa.select(memories.c.id)
            .where(
                memories.c.id.in_(sorted(wanted)),
                memories.c.personality_id == scope.personality_id,
                memories.c.user_id == scope.user_id,
                ~memories.c.reflected,
            )
            .order_by(memories.c.id)
            .with_for_update()
        )
        mark = (
            sa.update(memories)
            .where(memories.c.id.in_(unreflected.scalar_subquery()))
            .values(reflected=True)
        )
        async with self._engine.connect() as conn, conn.begin() as transaction:
            row = (await conn.execute(summary)).one_or_none()
            if row is None:
                raise Forgotten
            if (await conn.execute(mark)).rowcount < len(wanted):
                await transaction.rollback()
                return None
        return stored_memory(row)
