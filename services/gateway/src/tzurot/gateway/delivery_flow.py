"""After the answer: delivery (the exchange into history, then the job delivered, with the
follow-ups: group turns, consolidation by activity, fact extraction), job status, and what
informed an answer (Inspect)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from datetime import timedelta

import grpc
import structlog

from tzurot.gateway.domain import Actor, HistoryTurn, Job, JobContext, JobError, JobStatus
from tzurot.gateway.gateway_core import GatewayState, require_job_id
from tzurot.gateway.job_context import load_context, skill_notes
from tzurot.gateway.lost_jobs import gone_job_error
from tzurot.gateway.replacement import remove_replaced
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.runtime import metrics
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TzurotError,
    Unavailable,
    quoted,
)
from tzurot.runtime.retry import RETRYABLE

log = structlog.get_logger(__name__)

DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
"""Why a confirmation is told to try again: its job is gone and why could not be read."""

PENDING_HISTORY_PAGE = 100
HISTORY_REFUSED_FOR_GOOD = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)
"""A late exchange refused with one of these (its request is wrong, its personality is gone)
never will be stored: the sweep marks it and tries it no more. An outage (RETRYABLE) is
swept again; anything else (an INTERNAL that may pass) is passed over this time."""
ACTIVITY_COUNTER = "exchanges"
"""Delivered exchanges, counted for consolidation by activity (core.activity_counters)."""
FOLLOW_UPS_PER_SWEEP = 20
"""Owed group follow-ups one sweep claims and runs at most (`run_owed_follow_ups`)."""


class DeliveryFlow(GatewayState):
    async def confirm_delivery(self, job_id: str, message_ids: Sequence[str]) -> Job:
        """The answer was posted: store the exchange in history, then mark the job delivered.

        When memory is away (restarting), the delivery is recorded on the job (its message
        ids, still `streamed`) and the exchange is stored later by `store_pending_history`:
        an answer the user saw is never missing from history, however long memory is down.

        A job deleted with its personality (or its user's data) since it was answered is
        not delivered: the client is told why (lost_jobs.gone_job_error), to show it where
        the answer was.

        Confirming a delivered job again is idempotent: it returns the job, after running its
        group follow-up again, which a gateway killed after the delivery may have left undone
        (`_after_delivery_again`).
        """
        require_job_id(job_id)
        found = await self._store.get_job_with_context(job_id)
        if found is None:
            raise await self._gone(job_id)
        job, context = found
        if job.status is JobStatus.DELIVERED:
            await self._after_delivery_again(job)
            return job
        if job.status is not JobStatus.STREAMED:
            raise FailedPrecondition(
                f"job {job_id} is {job.status.value}; only a streamed job can be delivered",
                reason="JOB_NOT_STREAMED",
            )
        try:
            return await self._store_history(job, message_ids, context)
        except TzurotError as err:
            if err.code is not grpc.StatusCode.UNAVAILABLE or err.reason == DATABASE_UNAVAILABLE:
                raise  # (the database's, not memory's: `_gone`)
            pending = await self._store.note_delivery(job.id, message_ids)
            self._history_pending = True
            log.warning("job.history_pending", job_id=job.id, reason=err.reason)
            return pending

    async def store_pending_history(self) -> int:
        """Stores the exchanges of jobs delivered while memory was away; how many it stored.

        Memory's StoreExchange is idempotent on the job id, so replicas sweeping the same job
        store it once. Every pending job is read, a page at a time: one that can never be
        stored (its personality deleted: HISTORY_REFUSED_FOR_GOOD) is marked so, logged once
        and not tried again; one that failed otherwise is passed over, not in the way of the
        others. Memory away (UNAVAILABLE, DEADLINE_EXCEEDED) ends the sweep until the next.
        """
        if not self._history_pending:
            return 0
        self._history_pending = False  # a delivery noted during this sweep sets it again
        stored = 0
        last: Job | None = None
        while True:
            page = await self._store.jobs_pending_history(PENDING_HISTORY_PAGE, after=last)
            for job in page:
                try:
                    await self._store_history(job, job.delivered_message_ids)
                except TzurotError as err:
                    if err.code in RETRYABLE:
                        self._history_pending = True  # memory is still away: sweep again
                        return stored
                    if err.code in HISTORY_REFUSED_FOR_GOOD:
                        error = JobError(err.code.name, err.reason, err.message)
                        await self._store.refuse_history(job.id, error)
                        log.warning("job.history_refused", job_id=job.id, reason=err.reason)
                    else:
                        log.warning("job.history_failed", job_id=job.id, reason=err.reason)
                    continue
                stored += 1
                log.info("job.history_stored_late", job_id=job.id)
            if len(page) < PENDING_HISTORY_PAGE:
                return stored
            last = page[-1]

    async def _store_history(
        self, job: Job, message_ids: Sequence[str], context: JobContext | None = None
    ) -> Job:
        personality = await self._store_personality(job.personality_id)
        if context is None:
            context = await load_context(self._store.engine, job.id)
        answer = HistoryTurn(
            "assistant",
            personality.slug,
            personality.display_name,
            job.content,
            tuple(message_ids),
            skill_notes(context.report),
        )
        turns = [answer]
        # A scheduled turn (free will, a chain reply) answered no human message: only the
        # answer is history, the channel's and nobody's own (no user: the payer's undo, clear
        # or forget never takes it), and no one's long-term memories form from it.
        scheduled = job.idempotency_key.startswith(TURN_KEY_PREFIX)
        if not scheduled:
            asked = HistoryTurn(
                "user",
                job.author_id,
                job.author_name,
                # As the prompt saw it: a voice message's transcript, image descriptions.
                job.request_content if context.user_content is None else context.user_content,
                job.request_message_ids,
                context.attachments,
            )
            turns = [asked, answer]
        # A 🔄's answer: the exchange it replaces leaves history now, before this one is
        # stored (the two share the user's message; a new turn of it is never taken).
        await remove_replaced(self._store, self._turns, job)
        await self._memory.store_exchange(
            job_id=job.id,
            conversation_id=job.channel_id,
            personality_id=job.personality_id,
            user_id="" if scheduled else job.user_id,
            turns=turns,
            # The signal of use that reinforces long-term memories (retrieval alone does not).
            used_memory_ids=context.report.memory_ids if context.report is not None else (),
            extract_facts=self._limits.extract_facts and len(turns) > 1,
            form_memories=not scheduled,
        )
        if self._limits.extract_facts and len(turns) > 1:
            self.facts_waiting()
        # Delivered, its group round read, its group follow-up owed and the activity counted:
        # one statement. The follow-up is this gateway's for a job lease; killed before it
        # ran, it is left to the sweep (`run_owed_follow_ups`).
        every = self._limits.consolidate_every
        delivered = await self._store.deliver(
            job.id,
            message_ids,
            bump_counter=ACTIVITY_COUNTER if every > 0 else "",
            follow_up_seconds=self._limits.job_lease_seconds,
        )
        if delivered is None:  # a concurrent confirmation delivered it (and does the rest)
            done = await self._store.get_job(job.id)
            if done is None:  # or a deletion dropped it meanwhile
                raise await self._gone(job.id)
            if done.status is JobStatus.DELIVERED:  # unless its gateway died first
                await self._after_delivery_again(done)
            return done
        metrics.record_job("delivered")
        await self.groups.after_delivery(delivered.job, tuple(message_ids), delivered.group_job)
        if delivered.follow_up_owed:
            await self.group_store.follow_up_done(job.id)
        self._count_activity(delivered.counter)
        return delivered.job

    async def _after_delivery_again(self, job: Job) -> None:
        """The group follow-up (`Groups.after_delivery`: the last speaker, the chain reply) of
        a job found delivered already, by a confirmation repeated: the bot's retry when its
        first ConfirmDelivery failed, an `unfinished` hand-over's acknowledgement.

        The delivery (`deliver`, one statement) and its follow-up are separate statements: a
        gateway killed between the two leaves the job delivered and its round's chain reply
        never queued, and the bot's retry of its confirmation lands here. So every repeated
        confirmation of a group job runs the follow-up again; it is idempotent (see
        `Groups.after_delivery`'s `again`), and then owed no more. A delivery no confirmation
        repeats (one the pending-history sweep stored) has it run by `run_owed_follow_ups`.
        The chain is not queued in the delivery's statement instead: whether one is wanted
        and who says it is decided in Python (the channel's settings cascade for the cap and
        cooldown, the members' talkativeness, the seeded pick of speakers.py), which that
        statement cannot do, and deciding it before the statement would queue a reply to an
        answer whose delivery may still be refused (its job gone); the statement only notes
        that the follow-up is owed.

        Only while the job was delivered less than `unfinished_max_age_seconds` ago: a
        repeated confirmation comes within it (the bot's retries take seconds; the unfinished
        sweep leaves older jobs alone), and an acknowledged chain event, whose dedup key makes
        the repeat a no-op, is kept at least the outbox's retention after the delivery, which
        is longer (config.py), so a repeat never queues a chain reply a second time.
        """
        await self.groups.after_delivery_again(job, self._follow_up_window())
        await self.group_store.follow_up_done(job.id)

    async def run_owed_follow_ups(self) -> int:
        """Runs the group follow-ups a gateway killed after a delivery left owed (whichever
        path delivered: a confirmation, the pending-history sweep, an `unfinished`
        acknowledgement); how many it ran.

        The delivery's own statement marks a round's last answer as owing its follow-up
        (`group_follow_ups`), held by the delivering gateway for a job lease; the follow-up
        clears it once it ran. One still owed after that is claimed here by one replica (FOR
        UPDATE SKIP LOCKED, for a job lease: one whose sweep dies is taken again after it)
        and run as a repeated confirmation runs it (`_after_delivery_again`: the chain reply
        queued once by its dedup key, even when a confirmation or another sweep ran it too).
        One delivered longer ago than that allows is dropped, not run (log
        `group.follow_up_dropped`). Every sweep, and at start.
        """
        within = self._follow_up_window()
        owed = await self.group_store.claim_owed_follow_ups(
            within, self._limits.job_lease_seconds, FOLLOW_UPS_PER_SWEEP
        )
        for job_id in owed.dropped:
            log.warning("group.follow_up_dropped", job_id=job_id)
        ran = 0
        for job_id in owed.claimed:
            try:
                job = await self._store.get_job(job_id)
                if job is not None:  # else deleted since (its row with it)
                    await self.groups.after_delivery_again(job, within)
                await self.group_store.follow_up_done(job_id)
            except Exception:  # kept owed: run again once its lease ran out
                log.warning("group.follow_up_failed", job_id=job_id, exc_info=True)
                continue
            ran += 1
            log.info("group.follow_up_run_late", job_id=job_id)
        return ran

    def _follow_up_window(self) -> timedelta:
        """How long after its delivery a group follow-up may run again (`_after_delivery_again`):
        less than the unfinished sweep's reach and the outbox's retention, so the first run's
        chain event, if any, is still there to make a repeat a no-op."""
        limits = self._limits
        return timedelta(
            seconds=min(limits.unfinished_max_age_seconds, limits.bot_events_retention_seconds)
        )

    def _count_activity(self, count: int | None) -> None:
        """Consolidation triggered by activity: every `consolidate_every` exchanges (`count`:
        the counter after this one), in the background (the answer is delivered already; a
        failure waits for the next trigger)."""
        every = self._limits.consolidate_every
        if every <= 0 or count is None or count % every:
            return
        task = asyncio.create_task(self._consolidate())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _consolidate(self) -> None:
        try:
            await self._memory.consolidate()
            log.info("memory.consolidated_by_activity")
        except Exception:
            log.warning("memory.consolidation_failed", exc_info=True)

    async def _gone(self, job_id: str) -> TzurotError:
        """Why the job to deliver is gone: deleted with its personality or its user's data
        (the reason its half answer was handed to the bot with), or no such job. When the
        reason cannot be read (the database away: a failover), UNAVAILABLE: the bot retries
        its confirmation (idempotent) and learns why then, rather than keeping a deleted
        personality's answer up as if it had been delivered."""
        try:
            withheld = await self._store.withheld_reason(job_id)
        except Exception as exc:  # the database away: asked again, it reads
            log.warning("job.withheld_reason_not_read", job_id=job_id, exc_info=True)
            raise Unavailable(
                f"job {job_id} is gone and why could not be read; try again",
                reason=DATABASE_UNAVAILABLE,
            ) from exc
        return gone_job_error(job_id, withheld)

    async def job_status(
        self, *, job_id: str = "", idempotency_key: str = "", delivered_message_id: str = ""
    ) -> Job:
        """The job, as its pollers must read it: one the gateway will run again by itself (a
        retry under way, an answer its dying bot cancelled still to be generated again:
        store/retries.py) is `queued`, without the failure of its last attempt; every other
        failed job is failed, for good unless someone sends it again."""
        if job_id:
            require_job_id(job_id)
        elif not delivered_message_id and not idempotency_key:
            raise InvalidArgument(
                "job_id", "give a job_id, an idempotency_key or a delivered_message_id"
            )
        found = await self._store.job_outlook(
            job_id=job_id,
            idempotency_key=idempotency_key,
            delivered_message_id=delivered_message_id,
            max_age_seconds=self._limits.unfinished_max_age_seconds,
        )
        if found is None:
            if job_id:
                raise NotFound(f"no job {job_id}", reason="JOB_NOT_FOUND")
            if delivered_message_id:
                raise NotFound(
                    f"no answer was delivered as message {delivered_message_id!r}",
                    reason="JOB_NOT_FOUND",
                )
            raise NotFound(
                f"no job for idempotency key {quoted(idempotency_key)}", reason="JOB_NOT_FOUND"
            )
        job, runs_again = found
        if runs_again:
            # As a queued job reads: nothing of the attempt that ended (its finish, a
            # partial answer, its usage).
            return dataclasses.replace(
                job,
                status=JobStatus.QUEUED,
                error=None,
                content="",
                usage=None,
                finished_at=None,
            )
        return job

    async def job_context(self, job: Job, actor: Actor) -> JobContext | None:
        """What informed the job's answer, for its own user or a superuser; else None."""
        user = await self.user(actor)
        if job.user_id != user.id and not user.superuser:
            return None
        return await load_context(self._store.engine, job.id)
