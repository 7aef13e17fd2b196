"""A job's run, its outcomes: the answer stored on its job (`_finish`), the job failed
(`_fail`), why a run lost its job (`_lost`), a duplicate's replay of a finished job, the
footer of a stored answer handed out again (`_stored_footer`: a replay's, a restarted bot's),
and the lease a run renews while it lasts. Every write is fenced by the run's attempt
(store/jobs.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping

import structlog

from tzurot.gateway.domain import (
    GenerateEvent,
    GenerationFinished,
    Job,
    JobAccepted,
    JobError,
    JobStatus,
    Personality,
    ReplyChunk,
    ReplyFinished,
    ReplyRequest,
)
from tzurot.gateway.gateway_core import GatewayState
from tzurot.gateway.job_context import context_columns, load_context
from tzurot.gateway.lore import LoreState
from tzurot.gateway.lost_jobs import lost_job_error
from tzurot.gateway.reply_requests import stored_footer
from tzurot.gateway.settings import ResolvedSetting, channel_ids, resolve
from tzurot.gateway.store.jobs import JOB_TAKEN_OVER, taken_over
from tzurot.runtime import metrics
from tzurot.runtime.errors import FailedPrecondition, TzurotError, error_from_code

log = structlog.get_logger(__name__)


class JobOutcomes(GatewayState):
    """A run's writes on its job, each fenced by the run's attempt."""

    async def _save_lore_state(
        self, conversation_id: str, personality_id: str, state: LoreState
    ) -> None:
        """Sticky, cooldown and delay count this conversation's messages: kept (per channel
        and personality) so they survive restarts. The answer is stored already: a refused
        write costs the next turns' lore timing, not this answer."""
        try:
            await self._store.save_lore_state(conversation_id, personality_id, state)
        except Exception:
            log.exception("job.lore_state_not_saved", personality_id=personality_id)

    async def _finish(
        self,
        job: Job,
        attempt: int,
        finished: ReplyFinished,
        request_type: str,
        request: ReplyRequest,
    ) -> None:
        """Records the run's answer and usage on its job (streamed), while the job is still
        this run's; else only what the provider billed (as paid, not delivered), and the run
        ends with why (`_lost`)."""
        try:
            await self._store.finish_job(
                job.id,
                finished.content,
                finished.usage,
                request_type,
                context_columns(finished, keep_reasoning=request.keep_reasoning),
                files=finished.files,
                attempt=attempt,
            )
        except FailedPrecondition as err:
            if err.reason != JOB_TAKEN_OVER:
                raise
            lost = await self._lost(job)
            try:
                await asyncio.shield(
                    self._store.record_lost_run_usage(
                        job.id, job.user_id, finished.usage, request_type
                    )
                )
            except Exception:
                log.warning("job.lost_run_usage_not_recorded", job_id=job.id, exc_info=True)
            raise lost from err

    async def _lost(self, job: Job) -> TzurotError:
        """Why the job is no longer this run's: another run's now, or deleted with its
        personality or its user's data (lost_jobs.py). A job is taken over around a Postgres
        failover, when that read may fail too: then taken over, as before it was read."""
        try:
            loss = await self._store.job_loss(job.id, job.user_id, job.personality_id)
        except Exception:  # the database away: the run still ends as one that lost its job
            log.warning("job.loss_not_read", job_id=job.id, exc_info=True)
            return taken_over(job.id)
        log.info("job.lost", job_id=job.id, gone=loss.job_gone)
        return lost_job_error(job.id, loss)

    async def _fail(self, job_id: str, error: JobError, attempt: int) -> bool:
        """Marks the job failed unless it finished already (or another run took it over);
        shielded, so a cancelled stream still records why. Whether it did."""
        if not await asyncio.shield(self._store.fail_job(job_id, error, attempt)):
            # Finished already, or another run's now: either way not this failure's to mark.
            log.info("job.not_marked_failed", job_id=job_id, reason=error.reason)
            return False
        metrics.record_job("failed", error.reason)
        log.info("job.failed", job_id=job_id, code=error.code, reason=error.reason)
        return True

    async def _replay(
        self, job: Job, personality: Personality, settings: Mapping[str, ResolvedSetting]
    ) -> AsyncGenerator[GenerateEvent, None]:
        """A duplicate request of a finished job: repeat its outcome, with the footer its
        first stream had (`settings`: the duplicate's, as admitted now)."""
        if job.status is JobStatus.FAILED:
            raise _job_error(job)
        metrics.record_job("replayed")
        yield JobAccepted(
            job_id=job.id,
            personality=personality,
            replayed=True,
            replacing=bool(job.replaces_job_id),
        )
        if job.content:
            yield ReplyChunk(job.content)
        yield GenerationFinished(
            job_id=job.id,
            content=job.content,
            usage=job.usage,
            finish_reason="stop",
            footer=await self._stored_footer(job, settings),
            files=await self._store.job_files(job.id),
        )

    async def _stored_footer(
        self, job: Job, settings: Mapping[str, ResolvedSetting] | None = None
    ) -> str:
        """The line under the job's stored answer, as its stream had it
        (reply_requests.stored_footer): the model, when the user's model_footer setting is on
        (`settings`, else hers where the job was asked), and the files inference left unread
        for want of a key, from the job's row."""
        context = await load_context(self._store.engine, job.id)  # the row's, in one read
        if settings is None:
            levels = await self._admin_store.setting_levels(
                user_id=job.user_id, personality_id=job.personality_id, **channel_ids(job.location)
            )
            settings = resolve(levels)
        return stored_footer(job, context, settings)

    async def _keep_alive(self, job_id: str, attempt: int, lost: asyncio.Event) -> None:
        """Renews the job's lease while it runs, so duplicates do not take it over; sets
        `lost` (and stops) when the job is no longer this run's."""
        interval = self._limits.job_lease_seconds / 4
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._store.heartbeat(job_id, attempt):
                    log.warning("job.lease_lost", job_id=job_id, attempt=attempt)
                    lost.set()
                    return
            except Exception:  # a missed beat is not fatal; the next one may succeed
                log.warning("job.heartbeat_failed", job_id=job_id, exc_info=True)


def _job_error(job: Job) -> TzurotError:
    error = job.error
    if error is None:
        return FailedPrecondition(f"job {job.id} failed", reason="JOB_FAILED")
    return error_from_code(error.code, error.message, reason=error.reason)
