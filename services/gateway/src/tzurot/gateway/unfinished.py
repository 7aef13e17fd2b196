"""Answers whose bot died while streaming them (kill -9, a crash, a lost node).

The bot tells the gateway which Discord messages show an answer as it streams
(NoteAnswerPreview). A job that still has a preview but was never delivered some time after it
ended (`unfinished_after_seconds`, longer than a live bot ever takes to confirm) lost its bot:

- streamed (the answer is whole): an `unfinished` bot event asks whichever bot holds the shard
  to edit the preview into the whole answer; its acknowledgement, with the message ids,
  delivers the job (history), as ConfirmDelivery would have;
- failed because its client went away (CLIENT_CANCELLED: the bot died mid-generation): the
  answer is generated again once, without a client (an operator's RetryJob), then handed over
  the same way; if that fails too, the event carries no answer and the bot turns the preview
  into a failure notice.

A bot that shows an error in its preview clears the preview first, so only an abandoned one is
finished. Events are once-only per job (dedup key), so replicas sweeping together hand it once.
A 🔄's answer comes with the messages of the answer it replaces (`replaced_messages`): its
dead bot left them until the new one was posted, and the bot finishing it deletes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from tzurot.gateway.domain import Job, JobStatus
from tzurot.gateway.gateway_core import GatewayState, require_id
from tzurot.gateway.store.previews import UNFINISHED_KIND

log = structlog.get_logger(__name__)

CLIENT_CANCELLED = "CLIENT_CANCELLED"
MAX_PREVIEW_MESSAGES = 50


class UnfinishedAnswers(GatewayState):
    async def retry_job(self, job_id: str) -> Job:  # the Gateway's (service.py)
        raise NotImplementedError

    async def note_preview(self, job_id: str, message_ids: Sequence[str]) -> None:
        """The answer of `job_id` is shown as `message_ids` so far (none: an error is shown
        there instead, nothing to finish)."""
        job = await self._job(job_id)  # an id, and a job: INVALID_ARGUMENT / NOT_FOUND
        ids = [i for i in message_ids if i][:MAX_PREVIEW_MESSAGES]
        for message_id in ids:
            require_id("message_ids", message_id)
        if not await self._store.note_preview(job.id, ids):
            log.info("job.preview_after_delivery", job_id=job.id)  # nothing left to finish

    async def replaced_messages(self, job: Job) -> list[str]:
        """The messages of the answer `job` replaces (a 🔄's); none for any other job, or when
        that answer's job is gone (deleted with its user's data)."""
        if not job.replaces_job_id:
            return []
        old = await self._store.get_job(job.replaces_job_id)
        return [] if old is None else list(old.delivered_message_ids)

    async def finish_unfinished_answers(self) -> int:
        """Hands each abandoned answer to the bot (or has it generated again first); how many
        it handed over."""
        handed = 0
        for job in await self._store.unfinished_jobs(self._limits.unfinished_after_seconds):
            if _regenerate(job):
                if await self._store.claim_preview_retry(job.id):
                    log.info("job.unfinished_regenerating", job_id=job.id)
                    task = asyncio.create_task(self._regenerate(job))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                continue
            if job.status is JobStatus.FAILED and not _failed_for_good(job):
                continue  # its regeneration is under way
            handed += await self._hand_to_bot(job)
        return handed

    async def _regenerate(self, job: Job) -> None:
        try:
            again = await self.retry_job(job.id)
        except Exception:
            log.warning("job.unfinished_retry_failed", job_id=job.id, exc_info=True)
            again = await self._job(job.id)
        await self._hand_to_bot(again)

    async def _hand_to_bot(self, job: Job) -> int:
        added = await self.group_store.add_event(
            {
                "kind": UNFINISHED_KIND,
                "dedup_key": f"{UNFINISHED_KIND}:{job.id}",
                "job_id": job.id,
                "guild_id": job.guild_id,
                "channel_id": job.channel_id,
                "personality_id": job.personality_id,
            }
        )
        if added is None:
            return 0
        self.events.wake()
        log.info("job.unfinished_handed", job_id=job.id, status=job.status.value)
        return 1


def _regenerate(job: Job) -> bool:
    """Failed only because its bot went away, and not generated again yet."""
    return (
        job.status is JobStatus.FAILED
        and job.preview_retried_at is None
        and job.error is not None
        and job.error.reason == CLIENT_CANCELLED
    )


def _failed_for_good(job: Job) -> bool:
    """A failed job with a preview whose regeneration (if any) has ended: it failed after the
    regeneration began (the regenerating gateway died, its orphan is failed), or it never
    needed one (it failed for another reason and its bot could not say so)."""
    if job.preview_retried_at is None:
        return True
    return job.finished_at is not None and job.finished_at >= job.preview_retried_at
