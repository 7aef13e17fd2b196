"""Memory's Postgres store for facts: the extraction outbox and superseding facts.

A fact is a memory (sector semantic, tag "fact"). A newer fact that contradicts one marks
it `superseded_by` itself: the old one stays as history (exports show it) but no search
returns it (`search_queries._scope_filter`).

A claim leases its jobs under a token of its own (`claimed_by`), as formation's outbox does.
Its lease can run out while gateway still waits for the LLM; another claim then takes the
jobs again, with newer ones. Only the claim that holds every job of a StoreFacts stores it,
and storing finishes the jobs (deletes their rows) in the same transaction: so the facts of
an exchange are stored once, whichever replica gets there first.
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
from tzurot.memory.memory_rows import memory_columns, stored_memory
from tzurot.memory.tables import fact_outbox, memories
from tzurot.memory.tombstones import forgotten_clause

FACT_TAG = "fact"


@dataclass(frozen=True)
class ClaimedJob:
    job_id: str
    scope: MemoryScope


@dataclass(frozen=True)
class FactClaim:
    """Jobs leased by one claim (by job id), and the claim's token."""

    token: uuid.UUID
    jobs: list[ClaimedJob]


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

    async def claim(self, limit: int, lease: timedelta, max_attempts: int) -> FactClaim:
        """Leases up to `limit` waiting jobs (oldest first) to a new token; drops those out
        of attempts."""
        token = uuid.uuid4()
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
                claimed_by=token,
                attempts=fact_outbox.c.attempts + 1,
            )
            .returning(fact_outbox.c.job_id, fact_outbox.c.personality_id, fact_outbox.c.user_id)
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.delete(fact_outbox).where(free, fact_outbox.c.attempts >= max_attempts)
            )
            rows = (await conn.execute(stmt)).all()
        jobs = sorted(
            (ClaimedJob(row.job_id, MemoryScope(row.personality_id, row.user_id)) for row in rows),
            key=lambda job: job.job_id,
        )
        return FactClaim(token, jobs)

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
        claim: uuid.UUID | None,
    ) -> tuple[list[StoredMemory], int] | None:
        """Finishes the jobs, inserts the facts, supersedes what they contradict: one
        transaction. Only a current fact of the same scope can be superseded.

        All or nothing: None, nothing stored and no job finished, unless every job still
        waits (in this scope) and, with `claim`, is still leased to it. A job that no
        longer waits was finished by another claim (which stored its facts), dropped, or
        its user was forgotten: no fact is stored twice, nor outlives its exchange. A job
        another claim took again after this one's lease ran out is that claim's to store:
        it extracted from the same turns and more. Without `claim` (a caller from before
        tokens) whoever finishes the jobs first stores; as finishing deletes the rows, the
        other finds them gone. Nothing either when the scope's user or personality was
        forgotten: the transaction's first statement checks the tombstones
        (tombstones.py), so a forget waits for this transaction or this one runs after it."""
        stored: list[StoredMemory] = []
        superseded = 0
        wanted = set(job_ids)
        mine = [
            fact_outbox.c.job_id.in_(sorted(wanted)),
            fact_outbox.c.personality_id == scope.personality_id,
            fact_outbox.c.user_id == scope.user_id,
            ~forgotten_clause(scope.personality_id, scope.user_id),
        ]
        if claim is not None:
            mine.append(fact_outbox.c.claimed_by == claim)
        async with self._engine.connect() as conn, conn.begin() as transaction:
            finished = await conn.execute(
                sa.delete(fact_outbox).where(*mine).returning(fact_outbox.c.job_id)
            )
            if len(finished.all()) < len(wanted):
                await transaction.rollback()  # ours wait for the lease to run out, then retried
                return None
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
