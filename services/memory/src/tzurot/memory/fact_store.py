"""Memory's Postgres store for facts: the extraction outbox and superseding facts.

A fact is a memory (sector semantic, tag "fact"). A newer fact that contradicts one marks
it `superseded_by` itself: the old one stays as history (exports show it) but no search
returns it (`memory_store._scope_filter`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import MemoryScope, StoredMemory
from tzurot.memory.embedding import Vector
from tzurot.memory.memory_store import memory_columns, stored_memory
from tzurot.memory.tables import fact_outbox, memories
from tzurot.memory.tombstones import forgotten_clause

FACT_TAG = "fact"


@dataclass(frozen=True)
class ClaimedJob:
    job_id: str
    scope: MemoryScope


@dataclass(frozen=True)
class FactRow:
    """A fact ready to store: its text, embedding, the facts it supersedes, its sources."""

    text: str
    embedding: Vector
    supersedes: tuple[str, ...]
    source_turn_ids: tuple[str, ...]
    created_at: datetime | None


class PostgresFactStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim(self, limit: int, lease: timedelta, max_attempts: int) -> list[ClaimedJob]:
        """Leases up to `limit` waiting jobs (oldest first); drops those out of attempts."""
        free = sa.or_(
            fact_outbox.c.claimed_until.is_(None), fact_outbox.c.claimed_until < sa.func.now()
        )
        chosen = (
            sa.select(fact_outbox.c.job_id)
            .where(free)
            .order_by(fact_outbox.c.created_at, fact_outbox.c.job_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            sa.update(fact_outbox)
            .where(fact_outbox.c.job_id.in_(chosen))
            .values(
                claimed_until=sa.func.now() + lease,
                attempts=fact_outbox.c.attempts + 1,
            )
            .returning(fact_outbox.c.job_id, fact_outbox.c.personality_id, fact_outbox.c.user_id)
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.delete(fact_outbox).where(free, fact_outbox.c.attempts >= max_attempts)
            )
            rows = (await conn.execute(stmt)).all()
        return sorted(
            (ClaimedJob(row.job_id, MemoryScope(row.personality_id, row.user_id)) for row in rows),
            key=lambda job: job.job_id,
        )

    async def known_facts(self, scope: MemoryScope, limit: int) -> list[StoredMemory]:
        """The scope's current facts, newest first."""
        stmt = (
            sa.select(*memory_columns())
            .where(
                memories.c.personality_id == scope.personality_id,
                memories.c.user_id == scope.user_id,
                memories.c.tags.contains([FACT_TAG]),
                memories.c.superseded_by.is_(None),
            )
            .order_by(memories.c.created_at.desc(), memories.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [stored_memory(row) for row in await conn.execute(stmt)]

    async def store(
        self,
        scope: MemoryScope,
        job_ids: Sequence[str],
        facts: Sequence[FactRow],
        salience: float,
    ) -> tuple[list[StoredMemory], int]:
        """Finishes the jobs, inserts the facts, supersedes what they contradict: one
        transaction. Only a current fact of the same scope can be superseded. Nothing is
        stored when none of the jobs is waiting any more (their user was forgotten, or
        another claim finished them): no fact outlives the exchange it came from. Nor when
        the scope's user or personality was forgotten: the transaction's first statement
        checks the tombstones (tombstones.py), so a forget waits for this transaction or
        this one runs after it."""
        stored: list[StoredMemory] = []
        superseded = 0
        async with self._engine.begin() as conn:
            finished = await conn.execute(
                sa.delete(fact_outbox)
                .where(
                    fact_outbox.c.job_id.in_(list(job_ids)),
                    fact_outbox.c.personality_id == scope.personality_id,
                    fact_outbox.c.user_id == scope.user_id,
                    ~forgotten_clause(scope.personality_id, scope.user_id),
                )
                .returning(fact_outbox.c.job_id)
            )
            if not finished.all():
                return stored, superseded
            for fact in facts:
                values = {
                    "personality_id": scope.personality_id,
                    "user_id": scope.user_id,
                    "text": fact.text,
                    "embedding": fact.embedding,
                    "sector": "semantic",
                    "salience": salience,
                    "source_turn_ids": list(fact.source_turn_ids),
                    "tags": [FACT_TAG],
                }
                if fact.created_at is not None:
                    values |= {
                        "created_at": fact.created_at,
                        "last_accessed_at": fact.created_at,
                        "decayed_at": fact.created_at,
                    }
                row = (
                    await conn.execute(
                        memories.insert().values(values).returning(*memory_columns())
                    )
                ).one()
                stored.append(stored_memory(row))
                if fact.supersedes:
                    result = await conn.execute(
                        sa.update(memories)
                        .where(
                            memories.c.id.in_([uuid.UUID(i) for i in fact.supersedes]),
                            memories.c.personality_id == scope.personality_id,
                            memories.c.user_id == scope.user_id,
                            memories.c.tags.contains([FACT_TAG]),
                            memories.c.superseded_by.is_(None),
                        )
                        .values(superseded_by=row.id, superseded_at=sa.func.now())
                    )
                    superseded += int(result.rowcount)
        return stored, superseded
