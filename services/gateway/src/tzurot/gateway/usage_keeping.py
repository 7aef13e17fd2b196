"""What a job's run was billed, kept as usage rows whatever its answer becomes: a helper
model's reading (attachment_reads.py), each call inference reports paid outside the answer's
usage (`UsageSpent`: a skill's calls, a failed reply's rounds), and what a reply cut off
mid-answer (cancelled, or inference dying) was billed, as the gateway estimates it
(cancelled_usage.py). A whole answer is stored even when its client goes away while it is
(`_end_cancelled`). Every write here is shielded, and a refused one is logged, not raised:
the run's own outcome goes on.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from tzurot.gateway.attachment_reads import read_key
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.gateway.domain import (
    AttachmentRead,
    Job,
    JobError,
    ReplyFinished,
    ReplyRequest,
    Usage,
    UsageSpent,
)
from tzurot.gateway.gateway_core import Prepared
from tzurot.gateway.job_outcomes import JobOutcomes
from tzurot.gateway.job_upkeep import GATEWAY_STOPPED
from tzurot.runtime import metrics

log = structlog.get_logger(__name__)

CLIENT_CANCELLED = JobError("CANCELLED", "CLIENT_CANCELLED", "the client cancelled")


class UsageKeeping(JobOutcomes):
    """The run's usage rows (`Gateway._replies` and `_run_job` call these)."""

    _stopping: bool  # job_upkeep.py's

    async def _keep_spent(
        self, request: ReplyRequest, spent: UsageSpent, request_type: str
    ) -> None:
        """Records calls the reply paid for outside its answer's usage, one usage row each
        (store/usage_rows.py): a skill's (its own request_type), or a failed reply's answer
        calls (the job's `request_type`, failed). Shielded; a refused write is logged, not
        fatal, as a reading's."""
        try:
            await asyncio.shield(
                self._store.record_spent_usage(
                    request.job_id,
                    request.user_id,
                    spent.paid,
                    job_request_type=request_type,
                    failed=spent.failed,
                )
            )
        except Exception:
            log.exception("job.spent_usage_not_recorded", job_id=request.job_id)
        for paid in spent.paid:
            metrics.record_tokens(
                paid.provider,
                paid.model,
                input_tokens=paid.input_tokens,
                output_tokens=paid.output_tokens,
            )

    async def _keep_relayed(
        self, job: Job, prepared: Prepared, relayed: RelayedAnswer | None
    ) -> None:
        """A reply cut off once the provider began answering, with no report of it from
        inference (cancelled, or inference died): the part of its answer that no report
        carries, estimated (cancelled_usage.py: the prompts of the requests the provider began
        answering, the rounds billed, ~4 characters a token of the text relayed), one failed
        usage row under the job's model and kind; and each helper call for an attachment the
        provider had whole and whose outcome never came (an image's description, a
        transcription, a transcript's clean-up), one failed row of its own kind (estimated:
        a prompt, the audio's seconds; or a transcription's own count). Nothing
        when nothing is unreported (a request the provider refused unanswered is never
        counted), or the answer had finished (its usage is the job's)."""
        config = prepared.config.config
        if relayed is None:
            return
        usage = relayed.estimate(config.provider, config.model)
        answer = () if usage is None else (usage,)
        helpers = relayed.pending_calls()
        kept = await self._keep_unfinished(job, prepared, *answer, *helpers)
        if kept and usage is not None:
            log.info(
                "job.relayed_usage_estimated",
                job_id=job.id,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
            )
        if kept and helpers:
            log.info(
                "job.helper_calls_cut_estimated",
                job_id=job.id,
                kinds=sorted({call.request_type for call in helpers}),
            )

    async def _keep_unfinished(self, job: Job, prepared: Prepared, *usages: Usage) -> bool:
        """Failed usage rows (paid, not delivered), each under its own request_type or else
        the job's kind: one short insert, shielded; a refused write is logged, not raised
        (the failure goes on). Whether kept (nothing to keep: False)."""
        if not usages:
            return False
        try:
            await asyncio.shield(
                self._store.record_spent_usage(
                    job.id,
                    job.user_id,
                    usages,
                    job_request_type=prepared.request_type,
                    failed=True,
                )
            )
        except Exception:
            log.exception("job.unfinished_usage_not_recorded", job_id=job.id)
            return False
        for usage in usages:
            metrics.record_tokens(
                usage.provider,
                usage.model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
            )
        return True

    async def _end_cancelled(
        self,
        job: Job,
        attempt: int,
        prepared: Prepared,
        *,
        relayed: RelayedAnswer,
        finished: ReplyFinished | None,
        finishing: asyncio.Task[None] | None,
        request: ReplyRequest | None,
    ) -> None:
        """The client went away (or this gateway stops) during the run.

        Before the whole answer came: the job fails (CLIENT_CANCELLED, GATEWAY_STOPPED), and
        the text relayed is estimated (`_keep_relayed`), at once.

        Once it came (`finished`): it is stored all the same (`finishing`: its write, begun
        before the cancel, or now), as it would have been a moment later, and the cancel
        goes on once the write ended. The job reads streamed, as one whose client goes away
        just after: a resend replays it, and a dead bot's preview is finished by the
        unfinished-answer sweep; never paid twice. A write that did not commit (refused, or
        itself cancelled) leaves the job this run's: it fails, and the provider's own count
        of the answer is kept as paid, not delivered (a run that lost its job kept it in
        `_finish` already)."""
        error = GATEWAY_STOPPED if self._stopping else CLIENT_CANCELLED
        if finished is None or request is None:
            await asyncio.gather(
                self._keep_relayed(job, prepared, relayed), self._fail(job.id, error, attempt)
            )
            return
        if finishing is None:  # inference's stream had not ended yet: the write begins now
            finishing = asyncio.ensure_future(
                self._finish(job, attempt, finished, prepared.request_type, request)
            )
        await settled(finishing)
        if not finishing.cancelled() and finishing.exception() is None:
            log.info("job.finished_despite_cancel", job_id=job.id, reason=error.reason)
            return
        if await self._fail(job.id, error, attempt):
            await self._keep_unfinished(job, prepared, finished.usage)

    async def _keep_read(
        self, request: ReplyRequest, read: AttachmentRead, taken_after: datetime
    ) -> None:
        """Records what a helper model read for the job: each call's usage now, whatever the
        answer becomes, and the text for the job's next attempt (attachment_reads.py).
        Shielded, as a failure's record is. A refused write is logged, not fatal: the answer
        it was paid for still goes on. A key of the user's that refused a call the reading
        did without (a transcript's clean-up) turns inactive, as a refused answer's does (the
        key read after `taken_after`, the run's start: not one stored since)."""
        try:
            await asyncio.shield(
                self._store.record_attachment_read(
                    request.job_id,
                    request.user_id,
                    read_key(read.attachment.url),
                    read.attachment.description,
                    read.paid,
                )
            )
        except Exception:
            log.exception("job.attachment_read_not_recorded", job_id=request.job_id)
        for provider in read.refused_key_providers:  # her key refused: inactive now
            await self.key_uses.rejected(request.user_id, provider, taken_after=taken_after)
        for paid in read.paid:
            metrics.record_tokens(
                paid.provider,
                paid.model,
                input_tokens=paid.input_tokens,
                output_tokens=paid.output_tokens,
            )


async def settled(task: asyncio.Task[None]) -> None:
    """Waits until `task` ended (its outcome is its own to read), whatever cancels this wait
    meanwhile: a write in flight ends before the cancel that interrupted it goes on."""
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            continue  # the caller re-raises the cancel it is handling
    if not task.cancelled() and task.exception() is not None:
        log.warning("job.finish_not_stored", error=repr(task.exception()))
