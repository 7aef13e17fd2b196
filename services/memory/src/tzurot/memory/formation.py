"""Forms long-term memories from delivered exchanges, off the request path.

StoreExchange writes an outbox row in the exchange's transaction; this worker drains
the outbox (woken by `kick()` after each new exchange, and every `poll_seconds` in case
a wake-up was missed or the process restarted), forms the memories, then deletes the
row. A job that keeps failing is dropped after `max_attempts`, with an error log.

Replicas share the outbox: each job is claimed with `SELECT … FOR UPDATE SKIP LOCKED` and
its row stays locked while it is formed, so two replicas never form one exchange.
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
    ) -> None:
        self._memories = memory_store
        self._turns = turn_store
        self._longterm = longterm
        self._poll = poll_seconds
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def kick(self) -> None:
        """A new exchange is in the outbox: drain soon."""
        self._wake.set()

    async def drain(self) -> int:
        """Forms memories for every pending job; the number of jobs finished.

        Each job is claimed alone (locked until formed); one that fails is not claimed
        again in this pass, so it is retried on the next wake-up.
        """
        finished = 0
        failed: list[str] = []
        async with self._lock:
            while True:
                async with self._memories.claim_job(skip=failed) as claim:
                    if claim is None:
                        break
                    job_id = claim.job_id
                    try:
                        formed = await self._longterm.form(await self._turns.job_turns(job_id))
                    except Exception:
                        dropped = await claim.fail(self._max_attempts)
                        log.exception("memory formation failed", job_id=job_id, dropped=dropped)
                        failed.append(job_id)
                        continue
                    await claim.finish()
                log.info("memories formed", job_id=job_id, memories=formed)
                finished += 1
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
