"""Forms long-term memories from delivered exchanges, off the request path.

StoreExchange writes an outbox row in the exchange's transaction; this worker drains
the outbox (woken by `kick()` after each new exchange, and every `poll_seconds` in case
a wake-up was missed or the process restarted), forms the memories, then deletes the
row. A job that keeps failing is dropped after `max_attempts`, with an error log.

Replicas share the outbox: jobs are claimed in batches with `SELECT … FOR UPDATE SKIP
LOCKED` and their rows stay locked while they are formed, so two replicas never form one
exchange; a batch's texts are embedded in one call.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from tzurot.memory.domain import StoredTurn
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import OutboxClaim, PostgresMemoryStore
from tzurot.memory.store import PostgresTurnStore

log = structlog.get_logger("tzurot.memory.formation")


class Formation:
    def __init__(
        self,
        memory_store: PostgresMemoryStore,
        turn_store: PostgresTurnStore,
        longterm: LongTermMemory,
        *,
        poll_seconds: float = 30.0,
        max_attempts: int = 5,
        batch: int = 64,
    ) -> None:
        self._memories = memory_store
        self._turns = turn_store
        self._longterm = longterm
        self._poll = poll_seconds
        self._max_attempts = max_attempts
        self._batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def kick(self) -> None:
        """A new exchange is in the outbox: drain soon."""
        self._wake.set()

    async def drain(self) -> int:
        """Forms memories for every pending job; the number of jobs finished.

        Jobs are claimed `batch` at a time (locked until formed) and formed together, so
        their texts are embedded in one call. If a batch fails, its jobs are formed one by
        one to find the culprit: only a job that fails alone counts an attempt, and it is
        not claimed again in this pass (it is retried on the next wake-up).
        """
        finished = 0
        failed: list[str] = []
        async with self._lock:
            while True:
                async with self._memories.claim_jobs(self._batch, skip=failed) as claim:
                    if claim is None:
                        break
                    by_job = await self._turns.jobs_turns(claim.job_ids)
                    preceding = await self._preceding(by_job)
                    try:
                        formed = await self._longterm.form_many(list(by_job.values()), preceding)
                        done = list(claim.job_ids)
                    except Exception:
                        log.warning("memory formation batch failed", jobs=len(claim.job_ids))
                        formed, done = await self._one_by_one(claim, by_job, failed)
                    await claim.finish(done)
                    last = len(claim.job_ids) < self._batch
                log.info("memories formed", jobs=len(done), memories=formed)
                finished += len(done)
                if last:  # a short batch took every job there was: no empty claim after it
                    break
        return finished

    async def _preceding(self, by_job: dict[str, list[StoredTurn]]) -> dict[str, StoredTurn]:
        """Each exchange's preceding turn in its conversation (its memories' context)."""
        found = {}
        for job_id, turns in by_job.items():
            if not turns:
                continue
            first = turns[0]
            earlier = await self._turns.history(
                first.channel_id, first.personality_id, 1, before=first.created_at
            )
            if earlier:
                found[job_id] = earlier[-1]
        return found

    async def _one_by_one(
        self, claim: OutboxClaim, by_job: dict[str, list[StoredTurn]], failed: list[str]
    ) -> tuple[int, list[str]]:
        formed = 0
        done = []
        for job_id, turns in by_job.items():
            try:
                formed += await self._longterm.form(turns)
            except Exception:
                dropped = await claim.fail(job_id, self._max_attempts)
                log.exception("memory formation failed", job_id=job_id, dropped=dropped)
                failed.append(job_id)
                continue
            done.append(job_id)
        return formed, done

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="memory-formation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.drain()
            except Exception:
                log.exception("memory formation pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll)
            self._wake.clear()
