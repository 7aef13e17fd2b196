"""The formation outbox as formation uses it: jobs claimed in batches under a lease, the
batch's memories written with the end of its jobs, the lease renewed, jobs given back or
dropped (formation.py has the worker; outbox_sql.py, the statements).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.memory.domain import MemoryScope, StoredTurn
from tzurot.memory.embedding import Vector
from tzurot.memory.memory_rows import flat_vectors
from tzurot.memory.outbox_sql import (
    CLAIM,
    RELEASE_FAILED,
    RELEASE_UNFORMED,
    RENEW_CLAIM,
    WRITE_FORMED,
)
from tzurot.memory.store import stored_turn
from tzurot.memory.tables import formation_outbox


@dataclass(frozen=True)
class OutboxClaim:
    """Leased outbox jobs and what formation reads of them (`claim_formation`)."""

    token: uuid.UUID
    job_ids: tuple[str, ...]
    turns: Mapping[str, Sequence[StoredTurn]]
    """Each job's turns in order (none: deleted since it was stored)."""
    preceding: Mapping[str, StoredTurn]
    """Each exchange's preceding turn in its conversation (its memories' context): the
    same user's or the channel's own (outbox_sql.PRECEDING_WINDOW)."""
    formed: frozenset[str] | set[str]
    """Turns whose scope already holds a memory formed from them."""
    dropped: tuple[str, ...] = ()
    """Jobs the claim deleted instead: claimed `max_attempts` times already."""

    def only(self, job_id: str) -> OutboxClaim:
        """The same lease, for one of its jobs (formed alone after a failed batch)."""
        return replace(self, job_ids=(job_id,))


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


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


class OutboxQueries:
    """The formation outbox's statements (PostgresMemoryStore has them)."""

    _auto: AsyncEngine
    """The pool in autocommit (tzurot.db.engine.autocommit): each statement is its own
    transaction."""

    async def pending_jobs(self, limit: int) -> list[str]:
        stmt = (
            sa.select(formation_outbox.c.job_id)
            .order_by(formation_outbox.c.created_at)
            .limit(limit)
        )
        async with self._auto.connect() as conn:
            return list(await conn.scalars(stmt))

    async def claim_formation(
        self,
        limit: int,
        *,
        skip: Sequence[str] = (),
        lease: float = 60.0,
        max_attempts: int = 5,
    ) -> OutboxClaim | None:
        """Leases up to `limit` of the oldest free outbox jobs for `lease` seconds (None if
        none), with their turns, each exchange's preceding turn and which turns are formed
        already: one statement.

        `FOR UPDATE SKIP LOCKED` picks the rows, so two replicas never lease one job; a
        job is free again when its lease runs out (its worker died) or its worker gives it
        back (`release_failed`, `release_unformed`). `skip`: jobs this pass already failed.
        Each claim counts an attempt; a job claimed `max_attempts` times already is dropped
        instead (`OutboxClaim.dropped`), so one whose lease keeps being lost cannot be
        embedded again and again for ever.
        """
        token = uuid.uuid4()
        params = {
            "token": token,
            "skip": list(skip),
            "lease": lease,
            "n": limit,
            "max": max_attempts,
        }
        rows = await direct.fetch(self._auto, CLAIM, params)  # its own transaction
        if not rows:
            return None
        dropped = tuple(sorted(r["claimed_job"] for r in rows if r["kind"] == "dropped"))
        claimed_at = {r["claimed_job"]: r["claimed_at"] for r in rows if r["kind"] == "turn"}
        job_ids = sorted(claimed_at, key=lambda job_id: (claimed_at[job_id], job_id))
        turns_of: dict[str, list[StoredTurn]] = {job_id: [] for job_id in job_ids}
        preceding: dict[str, StoredTurn] = {}
        formed: set[str] = set()
        for row in rows:
            if row["id"] is None:  # a claimed job whose turns were deleted since, or dropped
                continue
            turn = stored_turn(row)
            if row["kind"] == "preceding":
                preceding[row["claimed_job"]] = turn
                continue
            turns_of[row["claimed_job"]].append(turn)
            if row["formed"]:
                formed.add(turn.id)
        for found in turns_of.values():
            found.sort(key=lambda turn: turn.position)
        return OutboxClaim(token, tuple(job_ids), turns_of, preceding, formed, dropped)

    async def write_formed(
        self,
        new: Sequence[FormedRow],
        merges: Mapping[str, tuple[Sequence[str], float]],
        links: Iterable[tuple[str, str]],
        link_weight: float,
        claim: OutboxClaim | None = None,
    ) -> bool:
        """Formation's writes in one statement: the new memories, the merges into stored
        ones ({target: (turn ids, salience)}), the links (both directions) and, with a
        claim, the end of its jobs (their outbox rows go).

        With a claim, only the work of its jobs still leased to it is written (a forget may
        have deleted one job's row, another worker may have leased some again once the
        lease ran out: that worker forms them), and those jobs end; False, and nothing
        written, if none of them is.
        """
        job_of = (
            {turn.id: job for job, turns in claim.turns.items() for turn in turns}
            if claim is not None
            else {}
        )
        # Ids as text (lowercase hex orders as the uuids do): no uuid.UUID per edge.
        edges = sorted({(a, b) for x, y in links if x != y for a, b in ((x, y), (y, x))})
        params = {
            "jobs": list(claim.job_ids) if claim is not None else [],
            "token": claim.token if claim is not None else uuid.uuid4(),
            "rows": [
                {
                    "i": index,
                    "id": row.id,
                    "personality_id": row.scope.personality_id,
                    "user_id": row.scope.user_id,
                    "text": row.text,
                    "sector": row.sector,
                    "salience": row.salience,
                    "source_turn_ids": list(row.source_turn_ids),
                    "jobs": [job_of.get(turn_id, "") for turn_id in row.source_turn_ids],
                    "context": row.context,
                    "created_at": _iso(row.created_at),
                    "accessed_at": _iso(row.accessed_at),
                }
                for index, row in enumerate(new, start=1)
            ],
            "vecs": flat_vectors([row.vector for row in new]),
            "merges": [
                {
                    "id": target,
                    "turns": list(turn_ids),
                    "jobs": [job_of.get(turn_id, "") for turn_id in turn_ids],
                    "salience": salience,
                }
                for target, (turn_ids, salience) in merges.items()
            ],
            "srcs": [src for src, _dst in edges],
            "dsts": [dst for _src, dst in edges],
            "weight": link_weight,
        }
        async with self._auto.connect() as conn:
            return bool(await conn.scalar(WRITE_FORMED, params))

    async def renew_claim(self, claim: OutboxClaim, lease: float) -> int:
        """Extends the claim's lease by `lease` seconds from now; how many of its jobs are
        still its own (0: all done, given back, forgotten or leased again elsewhere)."""
        params = {"jobs": list(claim.job_ids), "token": claim.token, "lease": lease}
        async with self._auto.connect() as conn:
            return int((await conn.execute(RENEW_CLAIM, params)).rowcount)

    async def release_failed(
        self, claim: OutboxClaim, job_id: str, max_attempts: int, retry: float = 60.0
    ) -> bool:
        """Gives back a job that failed alone, its attempt (counted by the claim) kept: it
        is free again after `retry` seconds, doubled for each attempt, so its attempts are
        spread over time (an embedder failing now and then does not use them all up at
        once); True (and the row deleted) once `max_attempts` is reached. One statement,
        and nothing done unless the job is still this claim's."""
        params = {"job": job_id, "token": claim.token, "max": max_attempts, "retry": retry}
        async with self._auto.connect() as conn:
            return bool(await conn.scalar(RELEASE_FAILED, params))

    async def release_unformed(
        self, claim: OutboxClaim, job_ids: Sequence[str], delay: float
    ) -> None:
        """Gives back the claim's jobs `job_ids` untried (the embedder or Postgres was
        down: nothing wrong with them), the claim's attempt uncounted; free again after
        `delay` seconds."""
        params = {"jobs": list(job_ids), "token": claim.token, "delay": delay}
        async with self._auto.connect() as conn:
            await conn.execute(RELEASE_UNFORMED, params)
