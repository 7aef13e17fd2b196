"""Jobs a gateway leaves behind, and the sweeps that pick them up.

A gateway that stops (SIGTERM) releases the jobs it runs, failed and retryable, so the same
message sent again is answered at once; a killed one leaves them running until their lease
runs out, when any replica's sweep fails them (ORPHANED), also retryably. Either way a half
answer left in a preview is handed to the bot as cut off, not generated again (its bot may be
alive and have said to try again), unless it was the unfinished-answer sweep's regeneration,
which that sweep generates again (unfinished.py). The sweeps also store the history
`confirm_delivery` (and a greeting's acknowledgement, event_acks.py) had to leave pending,
run the group follow-ups (a chain reply) a gateway killed after a delivery left owed, hand
abandoned answers to the bot, and delete bot events acknowledged long ago.
"""

from __future__ import annotations

import asyncio

import structlog

from tzurot.gateway.domain import JobError
from tzurot.gateway.gateway_core import GatewayState
from tzurot.gateway.outbox_retention import OutboxRetention
from tzurot.gateway.store.previews import GATEWAY_RESTARTING
from tzurot.runtime import metrics

log = structlog.get_logger(__name__)

# What a job whose gateway was killed ends with once its lease ran out (also retryable).
ORPHANED = JobError(
    "UNAVAILABLE",
    GATEWAY_RESTARTING,
    "the gateway answering this restarted; send the message again",
)
# What a job running when its gateway stops (SIGTERM) keeps: retryable (jobs.RETRYABLE_CODES),
# so the same message sent again is answered at once by whichever gateway gets it.
GATEWAY_STOPPED = JobError(
    "UNAVAILABLE",
    GATEWAY_RESTARTING,
    "the gateway is restarting; send the message again in a moment",
)


STOP_BACKGROUND_SECONDS = 5.0
"""How long stopping waits for cancelled background work to end."""


class JobUpkeep(GatewayState):
    _running: set[str]
    """The jobs this process is running, released (failed-retryable) when it stops."""
    _stopping: bool
    event_retention: OutboxRetention
    """Deletes acknowledged bot events past their retention (outbox_retention.py)."""

    async def store_pending_history(self) -> int:  # delivery_flow.py's
        raise NotImplementedError

    async def store_pending_greetings(self) -> int:  # event_acks.py's
        raise NotImplementedError

    async def run_owed_follow_ups(self) -> int:  # delivery_flow.py's
        raise NotImplementedError

    async def finish_unfinished_answers(self) -> int:  # unfinished.py's
        raise NotImplementedError

    def stopping(self) -> None:
        """This process is shutting down: jobs cancelled from now on end GATEWAY_RESTARTING."""
        self._stopping = True

    async def stop_background(self, wait_seconds: float = STOP_BACKGROUND_SECONDS) -> None:
        """Cancels this process's background work (a sweep's regeneration of an unfinished
        answer, a consolidation) and waits for it to end, at most `wait_seconds` (its
        last writes may wait on a database that is away; the pod's termination grace must
        still cover the jobs' release after it), so none still holds a database connection
        when the engine closes unless it outlasts that bound (logged). A regeneration
        cancelled while this process is `stopping` ends its job failed GATEWAY_RESTARTING and
        releases its claim: another replica's sweep (or this one's, restarted) generates it
        again `unfinished_after_seconds` later, MAX_REGENERATIONS times at most
        (unfinished.py); then it is handed to the bot as an answer cut off by a restart."""
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=wait_seconds)
        if pending:
            log.warning("gateway.background_left_running", tasks=len(pending))

    async def release_running_jobs(self) -> int:
        """Marks the jobs this process still runs failed-retryable (GATEWAY_STOPPED), which
        releases them: the same message sent again is answered at once, not after the lease."""
        self._stopping = True
        ids = sorted(self._running)
        if not ids:
            return 0
        released = await self._store.release_jobs(ids, GATEWAY_STOPPED)
        for _ in released:
            metrics.record_job("failed", GATEWAY_STOPPED.reason)
        log.info("job.released_on_stop", jobs=released)
        return len(released)

    async def fail_orphaned_jobs(self) -> int:
        """Jobs whose gateway was killed (running, heartbeat older than the lease) end failed
        and retryable (ORPHANED): the record says what happened, and the same message sent
        again is still answered (a resend claims a retryable job at once)."""
        failed = await self._store.fail_orphaned_jobs(self._limits.job_lease_seconds, ORPHANED)
        for job_id in failed:
            metrics.record_job("failed", ORPHANED.reason)
            log.info("job.orphan_failed", job_id=job_id)
        return len(failed)

    async def run_sweeps(self, every: float) -> None:
        """Every `every` seconds: stores the answers and greetings whose history had to be
        left pending (and, at start, what a previous process left), fails jobs orphaned by a
        killed gateway, runs the group follow-ups a killed gateway left owed (any replica's:
        delivery_flow.py), hands answers abandoned by a killed bot to the bot
        (unfinished.py), and deletes bot events acknowledged long ago (outbox_retention.py: a
        pass an hour, a few batches a sweep)."""
        sweeps = (
            self.fail_orphaned_jobs,
            self.store_pending_history,
            self.run_owed_follow_ups,
            self.store_pending_greetings,
            self.finish_unfinished_answers,
            self.event_retention.drop_old_bot_events,
        )
        while True:
            for sweep in sweeps:  # independent: one failing or slow never starves the other
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the task's
                    # cancellation (the app's stop would then wait on this loop forever).
                    async with asyncio.timeout(max(every * 5, 10.0)):
                        await sweep()
                except Exception:  # the database or memory may be restarting; next time
                    log.warning("job.sweep_failed", sweep=sweep.__name__, exc_info=True)
            await asyncio.sleep(every)
