"""Forms long-term memories from delivered exchanges, off the request path.

StoreExchange writes an outbox row in the exchange's transaction; this worker drains
the outbox (woken by `kick()` after each new exchange, and every `poll_seconds` in case
a wake-up was missed or the process restarted), forms the memories, then deletes the
row. A wake-up waits `gather_seconds` before it drains, so the exchanges stored meanwhile
form in the same batch: a batch of one exchange cost about twice the CPU per exchange
(memory and Postgres) of a batch of many (docs/PERFORMANCE.md, "Formation gathers").
A job that keeps failing is dropped after `max_attempts`, with an error log.

Replicas share the outbox: jobs are leased in batches (`claim_formation`: one statement
picks free rows with `FOR UPDATE SKIP LOCKED`, leases them for `lease_seconds` and reads
their turns, each exchange's preceding turn and what is formed already), so two replicas
never form one exchange; a batch's texts are embedded in one call and its neighbours read
in one statement (`nearest_many`); one more statement writes every new memory, merge and
link of the batch, whatever its scopes, and deletes the outbox rows, only while the lease
is still this worker's (`write_formed`): three statements a batch, no transaction held
open. A worker that dies leaves its jobs leased until the lease runs out; one that is
stopped (a scale-down, a rolling update) claims nothing more and writes the batches it
has in flight first, so it leaves no lease behind.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from tzurot.memory.longterm import LeaseLost, LongTermMemory
from tzurot.memory.memory_store import OutboxClaim, PostgresMemoryStore

log = structlog.get_logger("tzurot.memory.formation")


class Formation:
    def __init__(
        self,
        memory_store: PostgresMemoryStore,
        longterm: LongTermMemory,
        *,
        poll_seconds: float = 30.0,
        gather_seconds: float = 0.0,
        max_attempts: int = 5,
        batch: int = 128,
        lease_seconds: float = 60.0,
    ) -> None:
        self._memories = memory_store
        self._lease = lease_seconds
        self._longterm = longterm
        self._poll = poll_seconds
        self._gather = gather_seconds
        self._max_attempts = max_attempts
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def kick(self) -> None:
        """A new exchange is in the outbox: drain soon."""
        self._wake.set()

    async def drain(self) -> int:
        """Forms memories for every pending job; the number of jobs finished.

        Jobs are leased `batch` at a time and formed together: their texts embedded in one
        call, their writes in one statement that also ends the lease. Two batches are in
        flight: the next is claimed and embedded while Postgres writes the previous one,
        and reads its neighbours only once that write is done (so it merges with and links
        to what the previous batch formed). If a batch fails, its jobs are formed one by
        one to find the culprit: only a job that fails alone counts an attempt, and it is
        not claimed again in this pass (it is retried on the next wake-up).
        """
        finished = 0
        failed: list[str] = []
        async with self._lock:
            in_flight: list[asyncio.Task[int]] = []  # at most two, oldest first
            try:
                while not self._stopping.is_set():
                    claim = await self._memories.claim_formation(
                        self._batch, skip=failed, lease=self._lease
                    )
                    if claim is None:
                        break
                    after = in_flight[-1] if in_flight else None
                    in_flight.append(asyncio.create_task(self._form_batch(claim, after, failed)))
                    if len(in_flight) == 2:
                        finished += await in_flight[0]
                        in_flight.pop(0)
                    if len(claim.job_ids) < self._batch:
                        break  # a short batch took every job there was: no empty claim after
                while in_flight:
                    finished += await in_flight[0]
                    in_flight.pop(0)
            finally:  # cancelled (stop) or failed: no batch left running on its own
                for task in in_flight:
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)
        return finished

    async def _form_batch(
        self, claim: OutboxClaim, after: asyncio.Task[int] | None, failed: list[str]
    ) -> int:
        """Forms one claimed batch (its neighbours read once `after` is done); jobs done."""
        try:
            formed = await self._longterm.form_many(
                list(claim.turns.values()), claim.preceding, claim=claim, after=after
            )
            done = list(claim.job_ids)
        except LeaseLost:
            log.warning("memory formation lease lost", jobs=len(claim.job_ids))
            formed, done = 0, []
        except Exception:
            log.warning("memory formation batch failed", jobs=len(claim.job_ids))
            if after is not None:
                await asyncio.wait([after])
            formed, done = await self._one_by_one(claim, failed)
        log.info("memories formed", jobs=len(done), memories=formed)
        return len(done)

    async def _one_by_one(self, claim: OutboxClaim, failed: list[str]) -> tuple[int, list[str]]:
        formed = 0
        done = []
        for job_id in claim.job_ids:
            alone = claim.only(job_id)
            try:
                formed += await self._longterm.form_many(
                    [claim.turns[job_id]], claim.preceding, claim=alone
                )
            except LeaseLost:
                continue
            except Exception:
                dropped = await self._memories.release_failed(claim, job_id, self._max_attempts)
                log.exception("memory formation failed", job_id=job_id, dropped=dropped)
                failed.append(job_id)
                continue
            done.append(job_id)
        return formed, done

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="memory-formation")

    async def stop(self, grace: float = 5.0) -> None:
        """Claims no new batch and waits up to `grace` seconds for the batches in flight
        to be written; past that they are cancelled (their jobs wait for their lease)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            log.warning("memory formation stopped mid-batch", grace_seconds=grace)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except asyncio.CancelledError:  # the stop itself cancelled: no worker left behind
            task.cancel()
            raise

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.drain()
            except Exception:
                log.exception("memory formation pass failed")
            await self._until(self._wake, self._poll)
            if self._wake.is_set() and self._gather > 0:
                # Woken by a new exchange: let the next few join it, so one batch forms
                # them (a batch of one cost ~2x the CPU per exchange of a full batch).
                await self._until(self._stopping, self._gather)
            self._wake.clear()

    async def _until(self, event: asyncio.Event, seconds: float) -> None:
        """Waits for `event` (or for a stop) at most `seconds`."""
        waits = [asyncio.ensure_future(e.wait()) for e in (event, self._stopping)]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
