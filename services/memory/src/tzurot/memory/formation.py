"""Forms long-term memories from delivered exchanges, off the request path.

StoreExchange writes an outbox row in the exchange's transaction; this worker drains
the outbox (woken by `kick()` after each new exchange, and every `poll_seconds` in case
a wake-up was missed or the process restarted), forms the memories, then deletes the
row. A wake-up waits `gather_seconds` before it drains, so the exchanges stored meanwhile
form in the same batch: a batch of one exchange cost about twice the CPU per exchange
(memory and Postgres) of a batch of many (docs/PERFORMANCE.md, "Formation gathers").

Replicas share the outbox: jobs are leased in batches (`claim_formation`: one statement
picks free rows with `FOR UPDATE SKIP LOCKED`, leases them for `lease_seconds` and reads
their turns, each exchange's preceding turn and what is formed already), so two replicas
never form one exchange; a batch's texts are embedded in one call and its neighbours read
in one statement (`nearest_many`); one more statement writes every new memory, merge and
link of the batch, whatever its scopes, and deletes the outbox rows, for the jobs whose
lease is still this worker's (`write_formed`): three statements a batch, no transaction
held open. A batch still at work after a third of its lease renews it (one statement each
time), so a slow embedder or a batch waiting for the one before it keeps its jobs: another
replica leasing them again would embed them again, and each would throw the other's work
away. A worker that dies leaves its jobs leased until the lease runs out; one that is
stopped (a scale-down, a rolling update) claims nothing more and writes the batches it
has in flight first, so it leaves no lease behind.

Failures: when a batch fails, the worker first checks whether the embedder and Postgres
answer. If either does not (an outage: nothing wrong with the exchanges), the jobs go back
uncounted, free again after a backoff, and the worker itself waits that long, wake-ups
included (every StoreExchange kicks it), doubling the wait while the outage lasts. Else
its jobs are formed one by one to find the culprit. Every claim counts an attempt (given
back with the jobs of an outage), and a job claimed `max_attempts` times is dropped, with an
error log naming the job only. Its attempts then either failed alone, each followed by a
wait of `retry_seconds`, doubled each time (at least 15 minutes from the first to the last,
by default), or lost their lease (a worker dying on it, or stalled past its lease: a lease's
time each), so no job is embedded again and again for ever; and an outage, however long,
drops nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import structlog

from tzurot.memory.forming import LeaseLost
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.outbox import OutboxClaim

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
        retry_seconds: float = 60.0,
        backoff_seconds: float = 5.0,
        max_backoff_seconds: float = 300.0,
    ) -> None:
        self._memories = memory_store
        self._lease = lease_seconds
        self._longterm = longterm
        self._poll = poll_seconds
        self._gather = gather_seconds
        self._max_attempts = max_attempts
        self._batch = batch
        self._retry = retry_seconds
        self._backoff_base = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._backoff = 0.0
        """How long the worker waits before its next pass (0: no outage now)."""
        self._outage = False
        """This pass met an outage: it claims nothing more."""
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def kick(self) -> None:
        """A new exchange is in the outbox: drain soon."""
        self._wake.set()

    @property
    def backoff(self) -> float:
        """Seconds the worker waits before its next pass because the embedder or Postgres
        was down (0: it was not)."""
        return self._backoff

    async def drain(self) -> int:
        """Forms memories for every pending job; the number of jobs finished.

        Jobs are leased `batch` at a time and formed together: their texts embedded in one
        call, their writes in one statement that also ends the lease. Two batches are in
        flight: the next is claimed and embedded while Postgres writes the previous one,
        and reads its neighbours only once that write is done (so it merges with and links
        to what the previous batch formed). If a batch fails while the embedder and
        Postgres answer, its jobs are formed one by one to find the culprit: only a job
        that fails alone keeps its attempt, and it is not claimed again in this pass (nor
        before its retry wait). If they do not answer, the pass stops (`backoff`).
        """
        finished = 0
        failed: list[str] = []
        async with self._lock:
            self._outage = False
            in_flight: list[asyncio.Task[int]] = []  # at most two, oldest first
            try:
                while not self._stopping.is_set() and not self._outage:
                    claim = await self._memories.claim_formation(
                        self._batch,
                        skip=failed,
                        lease=self._lease,
                        max_attempts=self._max_attempts,
                    )
                    if claim is None:
                        break
                    if claim.dropped:
                        log.error(
                            "memory formation jobs dropped",
                            job_ids=list(claim.dropped),
                            attempts=self._max_attempts,
                        )
                    if not claim.job_ids:
                        continue
                    after = in_flight[-1] if in_flight else None
                    in_flight.append(asyncio.create_task(self._form_batch(claim, after, failed)))
                    if len(in_flight) == 2:
                        finished += await in_flight[0]
                        in_flight.pop(0)
                    if len(claim.job_ids) + len(claim.dropped) < self._batch:
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
        """Forms one claimed batch (its neighbours read once `after` is done), its lease
        renewed meanwhile; jobs done."""
        renewing = asyncio.create_task(self._renew(claim))
        try:
            return await self._form_leased(claim, after, failed)
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def _form_leased(
        self, claim: OutboxClaim, after: asyncio.Task[int] | None, failed: list[str]
    ) -> int:
        try:
            formed = await self._longterm.form_many(
                list(claim.turns.values()), claim.preceding, claim=claim, after=after
            )
            done = list(claim.job_ids)
            self._back_up()
        except LeaseLost:
            log.warning("memory formation lease lost", jobs=len(claim.job_ids))
            formed, done = 0, []
        except Exception as error:
            if not await self._available():
                await self._give_back(claim, claim.job_ids, error)
                return 0
            log.warning(
                "memory formation batch failed", jobs=len(claim.job_ids), error=_kind(error)
            )
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
            except Exception as error:
                if not await self._available():  # it went down meanwhile: not this job's fault
                    await self._give_back(claim, claim.job_ids, error)
                    break
                failed.append(job_id)
                try:
                    dropped = await self._memories.release_failed(
                        claim, job_id, self._max_attempts, self._retry
                    )
                except Exception:
                    log.exception("memory formation job not given back", job_id=job_id)
                    continue
                log.exception(
                    "memory formation failed", job_id=job_id, dropped=dropped, error=_kind(error)
                )
                continue
            done.append(job_id)
        return formed, done

    async def _available(self) -> bool:
        """Whether the embedder and Postgres both answer now. A batch (or a job alone) that
        failed while one of them did not failed for that, not for its exchanges."""
        try:
            await self._longterm.probe_embedder()
            await self._memories.ping()
        except Exception:
            return False
        self._back_up()
        return True

    async def _give_back(
        self, claim: OutboxClaim, job_ids: Sequence[str], error: BaseException
    ) -> None:
        """The embedder or Postgres is down: the claim's jobs `job_ids` still its own go
        back untried and uncounted, free again after the backoff, which the worker waits
        too (`_run`); the pass claims nothing more. The log names the error's kind only
        (no text of an exchange)."""
        self._went_down()
        log.warning(
            "memory formation waits: embedder or database unavailable",
            jobs=len(job_ids),
            error=_kind(error),
            retry_in_seconds=self._backoff,
        )
        try:
            await self._memories.release_unformed(claim, job_ids, self._backoff)
        except Exception as failure:  # Postgres down: the lease runs out by itself
            log.warning("memory formation jobs not given back", error=_kind(failure))

    def _went_down(self) -> None:
        """Notes an outage: the backoff doubles once a pass (from `backoff_seconds`, up to
        `max_backoff_seconds`) until the embedder and Postgres are seen to answer again."""
        if not self._outage:
            self._outage = True
            self._backoff = min(self._max_backoff, max(self._backoff_base, 2 * self._backoff))

    def _back_up(self) -> None:
        """The embedder and Postgres answered (a batch formed, or the check after a
        failure): no more backoff, unless this pass met an outage already."""
        if not self._outage:
            self._backoff = 0.0

    async def _renew(self, claim: OutboxClaim) -> None:
        """Renews the claim's lease every third of it while its batch is formed: a batch
        slower than the lease (a slow embedder, a pipelined batch waiting for the one before
        it, a retry one by one) keeps its jobs, while a dead worker's lease still runs out.
        No statement for a batch done sooner (the hot path)."""
        while True:
            await asyncio.sleep(self._lease / 3)
            try:
                if not await self._memories.renew_claim(claim, self._lease):
                    return  # none of its jobs is still this claim's
            except Exception as error:  # the next beat tries again; two thirds of it remain
                log.warning("memory formation lease not renewed", error=_kind(error))

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
            except Exception as error:  # the claim failed: Postgres down, most likely
                log.warning("memory formation pass failed", error=_kind(error))
                self._went_down()
            if self._backoff > 0:
                # An outage: wake-ups wait too (every new exchange kicks, and a pass now
                # would fail again), then the next pass tries again.
                await self._until(self._stopping, self._backoff)
                continue
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


def _kind(error: BaseException) -> str:
    """An error as logged here: its type only (a message may quote an exchange's text)."""
    return type(error).__name__
