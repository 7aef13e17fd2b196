"""Forms long-term memories from delivered exchanges, off the request path.

StoreExchange writes an outbox row in the exchange's transaction; this worker drains
the outbox (woken by `kick()` after each new exchange, and every `poll_seconds` in case
a wake-up was missed or the process restarted), forms the memories, then deletes the
row. A job that keeps failing is dropped after `max_attempts`, with an error log.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
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
        batch: int = 50,
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
        """Forms memories for every pending job; the number of jobs finished."""
        finished = 0
        async with self._lock:
            while jobs := await self._memories.pending_jobs(self._batch):
                progressed = False
                for job_id in jobs:
                    try:
                        formed = await self._longterm.form(await self._turns.job_turns(job_id))
                    except Exception:
                        dropped = await self._memories.fail_job(job_id, self._max_attempts)
                        log.exception("memory formation failed", job_id=job_id, dropped=dropped)
                        progressed = progressed or dropped
                        continue
                    await self._memories.finish_job(job_id)
                    log.info("memories formed", job_id=job_id, memories=formed)
                    finished += 1
                    progressed = True
                if not progressed:
                    break  # every pending job is failing: retry on the next wake-up
        return finished

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
