"""Facts with supersession: the use-cases behind ClaimFactJobs and StoreFacts. No gRPC here.

Memory never calls an LLM and never sees a key. An exchange stored with `extract_facts`
(gateway has an LLM for it) waits in the fact outbox; gateway claims a batch, has
inference extract durable facts on the user's key (or a free-use config), and stores them
here. A new fact names the known facts it contradicts: they are superseded (kept as
history, never retrieved).

A claim's batches carry its token; StoreFacts gives it back and stores only while that
claim still holds every job (fact_store.py), so a claim whose lease ran out during a slow
extraction cannot store facts that the claim which took its jobs again stores too.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog

from tzurot.memory.domain import MemoryScope, StoredMemory, StoredTurn
from tzurot.memory.embedding import Embedder
from tzurot.memory.fact_store import FactRow, PostgresFactStore
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.validation import check_id, check_uuid
from tzurot.runtime.errors import InvalidArgument

log = structlog.get_logger("tzurot.memory.facts")

DEFAULT_CLAIM = 32
MAX_CLAIM = 256
DEFAULT_LEASE = timedelta(seconds=120)
MAX_LEASE = timedelta(hours=1)
MAX_ATTEMPTS = 5
KNOWN_FACTS = 50
MAX_FACTS = 32
MAX_FACT_CHARS = 500
FACT_SALIENCE = 0.7


@dataclass(frozen=True)
class FactBatch:
    """Claimed exchanges of one scope: their turns (oldest first) and the known facts."""

    scope: MemoryScope
    job_ids: list[str]
    turns: list[StoredTurn]
    known_facts: list[StoredMemory]
    claim: str
    """The claim's token (every batch of one claim has the same): StoreFacts' `claim`."""


@dataclass(frozen=True)
class NewFact:
    text: str
    supersedes: tuple[str, ...] = ()


class Facts:
    def __init__(
        self, store: PostgresFactStore, turns: PostgresTurnStore, embedder: Embedder
    ) -> None:
        self._store = store
        self._turns = turns
        self._embedder = embedder

    async def claim(self, limit: int = 0, lease_seconds: int = 0) -> list[FactBatch]:
        """Leases waiting exchanges, grouped by scope (an exchange deleted since is finished
        with nothing to extract when its batch is stored)."""
        limit = limit or DEFAULT_CLAIM
        if not 1 <= limit <= MAX_CLAIM:
            raise InvalidArgument("limit", f"limit must be between 1 and {MAX_CLAIM}")
        lease = timedelta(seconds=lease_seconds) if lease_seconds else DEFAULT_LEASE
        if not timedelta(0) < lease <= MAX_LEASE:
            raise InvalidArgument("lease_seconds", "lease_seconds must be between 1 and 3600")
        claim = await self._store.claim(limit, lease, MAX_ATTEMPTS)
        jobs = claim.jobs
        if not jobs:
            return []
        by_job = await self._turns.jobs_turns([job.job_id for job in jobs])
        by_scope: dict[MemoryScope, list[str]] = defaultdict(list)
        for job in jobs:
            by_scope[job.scope].append(job.job_id)
        batches = []
        for scope, job_ids in by_scope.items():
            turns = sorted(
                (turn for job_id in job_ids for turn in by_job.get(job_id, [])),
                key=lambda t: (t.created_at, t.job_id, t.position),
            )
            known = await self._store.known_facts(scope, KNOWN_FACTS)
            batches.append(FactBatch(scope, job_ids, turns, known, str(claim.token)))
        log.info("fact jobs claimed", jobs=len(jobs), batches=len(batches))
        return batches

    async def store(
        self,
        personality_id: str,
        user_id: str,
        job_ids: Sequence[str],
        facts: Sequence[NewFact],
        claim: str = "",
    ) -> tuple[list[StoredMemory], int]:
        """Stores the facts extracted from the claimed `job_ids` (finishing them, even with
        no facts); each supersedes the known facts it names. The facts' sources are the
        exchanges' turns, their time the newest turn's.

        `claim`: the batch's token. Nothing is stored (and nothing returned) unless every
        job still waits and is still this claim's: its lease ran out and another claim took
        a job again, which stores the facts instead (fact_store.py). Empty, from a caller
        that predates tokens: the jobs need only still wait."""
        check_id("personality_id", personality_id)
        check_id("user_id", user_id)
        token = _claim_token(claim)
        if not job_ids:
            raise InvalidArgument("job_ids", "job_ids is required")
        for index, job_id in enumerate(job_ids):
            check_id(f"job_ids[{index}]", job_id)
        if len(facts) > MAX_FACTS:
            raise InvalidArgument("facts", f"at most {MAX_FACTS} facts")
        for index, fact in enumerate(facts):
            if not fact.text.strip() or len(fact.text) > MAX_FACT_CHARS:
                raise InvalidArgument(
                    f"facts[{index}].text", f"a fact is 1 to {MAX_FACT_CHARS} characters"
                )
            for n, memory_id in enumerate(fact.supersedes):
                check_uuid(f"facts[{index}].supersedes[{n}]", memory_id)
        scope = MemoryScope(personality_id, user_id)
        by_job = await self._turns.jobs_turns(list(job_ids))
        turns = [turn for job_turns in by_job.values() for turn in job_turns]
        sources = tuple(turn.id for turn in turns)
        when = max((turn.created_at for turn in turns), default=None)
        vectors = await self._embedder.embed([fact.text.strip() for fact in facts])
        rows = [
            FactRow(fact.text.strip(), vector, tuple(fact.supersedes), sources, when)
            for fact, vector in zip(facts, vectors, strict=True)
        ]
        done = await self._store.store(scope, job_ids, rows, FACT_SALIENCE, token)
        if done is None:
            log.info("facts not stored: the jobs are no longer this claim's", jobs=len(job_ids))
            return [], 0
        stored, superseded = done
        log.info("facts stored", jobs=len(job_ids), facts=len(stored), superseded=superseded)
        return stored, superseded


def _claim_token(claim: str) -> uuid.UUID | None:
    """The claim's token; None for a caller that sends none (it predates tokens)."""
    if not claim:
        return None
    try:
        return uuid.UUID(claim)
    except ValueError:
        raise InvalidArgument("claim_token", "claim_token must be a FactBatch's token") from None
