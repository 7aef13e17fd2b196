"""Answers whose bot died while streaming them (kill -9, a crash, a lost node).

The bot tells the gateway which Discord messages show an answer as it streams
(NoteAnswerPreview). A job that still has a preview but was never delivered some time after it
ended (`unfinished_after_seconds`, longer than a live bot ever takes to confirm) lost its bot:

- streamed (the answer is whole): an `unfinished` bot event asks whichever bot holds the shard
  to edit the preview into the whole answer; its acknowledgement, with the message ids,
  delivers the job (history), as ConfirmDelivery would have;
- failed because its client went away (CLIENT_CANCELLED: the bot died mid-generation): the
  answer is generated again, without a client (an operator's RetryJob), then handed over the
  same way; if that fails too, the event carries no answer and the bot turns the preview into
  a failure notice.

A regeneration is claimed once (store/previews.claim_preview_retry). One cut short by its own
gateway's stop is released (its job failed GATEWAY_RESTARTING), and one whose gateway was
killed ends GATEWAY_RESTARTING when its orphan is failed: the next sweep generates either
again. Each costs the user's key, so an answer is generated again MAX_REGENERATIONS times at
most (a gateway that keeps stopping mid-regeneration, a crash loop); then it is handed over as
it is, cut off by a restart (the bot says so). Every run counts against the job's run limit
too (run_limit.py, 3 runs by default, the first one's included): a regeneration that was the
job's last run ends it failed JOB_RUN_LIMIT, handed over with those words (`failed_message`),
which the bot shows in the preview. A half answer that ended GATEWAY_RESTARTING
without ever being generated again is handed over so too, not generated again: its bot may
still be there (its gateway stopped, died, or was failed ORPHANED while it streamed on),
asking for it again (bot/answering.py: such a hand-over is then left to it, and deleted when
the job is taken up) or, its retries spent, having told the user to try again, clearing its
preview only later (a note that may be late or lost); a regeneration has no client, so no
bot told anyone that.

A bot that shows an error in its preview clears the preview first, so only an abandoned one is
finished. Events are once-only per job (dedup key), so replicas sweeping together hand it once.
A 🔄's answer comes with the messages of the answer it replaces (`replaced_messages`): its
dead bot left them until the new one was posted, and the bot finishing it deletes them.

The answer of a user whose data is being deleted is withheld, as any answer to her is
(USER_DATA_DELETING): the event carries no answer but that refusal's words, which the bot
shows in the preview (in the personality's voice, as it shows the refusal of a message), so
she is told once, in the messages that showed half an answer, why it is not finished. It is
not generated again, and its acknowledgement delivers nothing. Her deletion removes her jobs,
so it hands each answer of hers still showing a preview over so itself, in the transaction
that deletes them (store/previews.withhold_unfinished): the event keeps the preview's
message ids, and needs no job any more. One of her private personalities' answers outlives
that personality, deleted with her: handed out while it is being deleted, and naming no
personality once it is gone (store/previews.keep_withheld), it reaches the bot without one,
which still turns the preview into why and posts nothing.

So does the answer of a personality being deleted (PERSONALITY_DELETED, whoever it answered):
its deletion drops its answers in flight, and hands each one a dead bot left showing a
preview (or the sweep is generating again) over withheld first, with the words
PERSONALITY_DELETED_WORDS; an event queued before is withheld by the claim that hands it
out (outbox_store.py); and the sweep hands over so, naming no personality, one whose
personality's row went without that (a deletion before it did so: its event could not name
the row, and failed the sweep). Nothing of it is posted anew, and it is never posted as the
personality. A job still running for a live bot is not handed over: its run loses the job
and ends PERSONALITY_DELETED, in these same words (lost_jobs.py), which that bot shows in its
preview as a restarted one would. An event whose job is gone otherwise is
dropped (JOB_NOT_FOUND), never failing the bot's event stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from tzurot.gateway.domain import Job, JobStatus, UnfinishedAnswer
from tzurot.gateway.gateway_core import GatewayState, require_id, user_data_deleting
from tzurot.gateway.job_upkeep import GATEWAY_STOPPED
from tzurot.gateway.outbox_store import BotEventRow
from tzurot.gateway.run_limit import JOB_RUN_LIMIT
from tzurot.gateway.store.previews import (
    PERSONALITY_DELETED,
    UNFINISHED_KIND,
    USER_DATA_DELETING,
    WITHHELD_REASONS,
)

log = structlog.get_logger(__name__)

MAX_REPLY_HEADER_CHARS = 500
"""The longest reply header kept with a preview (the bot's is a quote of at most 60
characters, its author's name and a jump link: under 300)."""
MAX_PREVIEW_MESSAGES = 50
FINISH_ONE_SECONDS = 5.0
"""How long one answer's hand-over may take before the sweep goes on to the next."""
JOB_NOT_FOUND = "JOB_NOT_FOUND"
"""An `unfinished` event dropped when claimed: its job is gone (and the answer with it)."""
PERSONALITY_DELETED_WORDS = (
    "this personality was deleted, so this answer stops here; it answers no one now"
)
"""What the preview of an answer withheld PERSONALITY_DELETED says, after the bot's default
voice (the personality's own is gone with it)."""


class UnfinishedAnswers(GatewayState):
    _stopping: bool  # job_upkeep.py's

    async def retry_job(self, job_id: str) -> Job:  # the Gateway's (service.py)
        raise NotImplementedError

    async def _stored_footer(self, job: Job) -> str:  # job_outcomes.py's
        raise NotImplementedError

    async def note_preview(
        self, job_id: str, message_ids: Sequence[str], reply_header: str = ""
    ) -> None:
        """The answer of `job_id` is shown as `message_ids` so far (none: an error is shown
        there instead, nothing to finish), its first message starting with `reply_header`
        (kept for a restarted bot that finishes the answer)."""
        job = await self._job(job_id)  # an id, and a job: INVALID_ARGUMENT / NOT_FOUND
        if len(reply_header) > MAX_REPLY_HEADER_CHARS:
            # Not kept, but the note is: the preview's rescue matters more than its quote.
            log.info("job.reply_header_too_long", job_id=job.id, chars=len(reply_header))
            reply_header = ""
        ids = [i for i in message_ids if i][:MAX_PREVIEW_MESSAGES]
        for message_id in ids:
            require_id("message_ids", message_id)
        if not await self._store.note_preview(job.id, ids, reply_header if ids else ""):
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
        it handed over. A user's whose data is being deleted is handed over withheld, and so
        is one whose personality is gone (naming none: a deletion before its deletion handed
        such answers over itself). One that fails (or takes over FINISH_ONE_SECONDS) is
        logged and left for the next sweep: it never keeps the others (the oldest first)
        from being handed over. One that ended more than `unfinished_max_age_seconds` ago is
        left as it is: the conversation has moved on (and a backlog, after the sweep was
        down, is not generated again on users' keys)."""
        handed = 0
        limits = self._limits
        found = await self._store.unfinished_jobs(
            limits.unfinished_after_seconds, limits.unfinished_max_age_seconds
        )
        for unfinished in found:
            try:
                async with asyncio.timeout(FINISH_ONE_SECONDS):
                    handed += await self._finish_one(*unfinished)
            except Exception:
                log.warning("job.unfinished_failed", job_id=unfinished.job.id, exc_info=True)
        return handed

    async def _finish_one(
        self, job: Job, user_deleting: bool, gone: bool, regenerable: bool
    ) -> int:
        """One abandoned answer: handed to the bot (1), or generated again first (0)."""
        if user_deleting or gone:
            why = USER_DATA_DELETING if user_deleting else PERSONALITY_DELETED
            return await self._hand_to_bot(job, withheld=why, gone=gone)
        if regenerable:  # store/previews.may_regenerate, which the claim checks again
            # Shielded: a claim the sweep's bound cut short after it committed would leave
            # the job claimed with no regeneration to run it.
            await asyncio.shield(self._start_regeneration(job))
            return 0
        if job.status is JobStatus.FAILED and not _failed_for_good(job):
            return 0  # its regeneration is under way
        return await self._hand_to_bot(job)

    async def _start_regeneration(self, job: Job) -> None:
        """Claims the job's regeneration and, claimed, runs it in the background; not once
        this process is stopping (its background work is being cancelled: another
        replica's sweep generates it)."""
        if self._stopping:
            return
        regeneration = await self._store.claim_preview_retry(job.id, self._limits.job_lease_seconds)
        if regeneration is not None:
            log.info("job.unfinished_regenerating", job_id=job.id, regeneration=regeneration)
            task = asyncio.create_task(self._regenerate(job, regeneration))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def unfinished_answer(self, event: BotEventRow) -> UnfinishedAnswer | None:
        """What the bot is handed for an `unfinished` event: the whole answer, why there is
        none, or (withheld: her data or its personality being deleted, the event's reason)
        why it is not shown. None: the event was dropped (its job is gone, and nothing says
        what to show)."""
        job = None if event.job_id is None else await self._store.get_job(event.job_id)
        withheld = event.reason if event.reason in WITHHELD_REASONS else ""
        if job is None and not withheld:
            await self.events.ack(event.id, (), JOB_NOT_FOUND)
            log.info("job.unfinished_dropped", event_id=event.id, reason=JOB_NOT_FOUND)
            return None
        if job is not None and not withheld and await self._store.user_deleting(job.user_id):
            # Her deletion began after the event was claimed: recorded on the event, so that
            # its acknowledgement delivers nothing either.
            await self.group_store.withhold_unfinished(event.id, USER_DATA_DELETING)
            withheld = USER_DATA_DELETING
        if withheld or job is None:  # (no job: withheld, or dropped above)
            return UnfinishedAnswer(
                job_id=event.job_id or "",
                content="",
                preview_message_ids=event.preview_message_ids
                or (() if job is None else job.preview_message_ids),
                failed_reason=withheld,
                failed_message=withheld_words(withheld),
                # Her data being deleted: her message is not quoted again.
                reply_header=""
                if job is None or withheld == USER_DATA_DELETING
                else job.preview_header,
            )
        answered = job.status in (JobStatus.STREAMED, JobStatus.DELIVERED)
        error = None if answered else job.error
        return UnfinishedAnswer(
            job_id=job.id,
            content=job.content if answered else "",
            preview_message_ids=job.preview_message_ids,
            failed_reason="" if error is None else error.reason,
            # Run as often as a job may (run_limit.py): the preview says so, in its words,
            # not "cut off by a restart; try again".
            failed_message=error.message if error and error.reason == JOB_RUN_LIMIT else "",
            replaced_message_ids=tuple(await self.replaced_messages(job)) if answered else (),
            reply_header=job.preview_header,
            # The line its dead bot would have shown under it: the model, the files unread.
            footer=await self._stored_footer(job) if answered else "",
        )

    async def _regenerate(self, job: Job, regeneration: int) -> None:
        """Generates the answer again (the `regeneration`th time) and hands it over. Cut
        short by this gateway's stop (cancelled), its claim is released for the next sweep,
        which generates it again (another replica's, or this one restarted)."""
        try:
            again = await self.retry_job(job.id)
        except asyncio.CancelledError:
            await self._release_regeneration(job.id, regeneration)
            raise
        except Exception:
            log.warning("job.unfinished_retry_failed", job_id=job.id, exc_info=True)
            # Stopped before its own lease (a scheduled turn's job, one a resend answered):
            # the sweep's lease ends here, and the job reads as it is.
            await self._store.end_retry(job.id)
            found = await self._store.get_job(job.id)
            if found is None:  # deleted meanwhile, its answer handed over withheld then
                log.info("job.unfinished_gone", job_id=job.id)
                return
            again = found
        await self._hand_to_bot(again)

    async def _release_regeneration(self, job_id: str, regeneration: int) -> None:
        """Undoes the claim of a regeneration this gateway's stop cut short (shielded, as the
        run's own failure write is). Lost with the database (or the engine already closed),
        the claim stays; once its run had begun, that run's failure after the claim
        (GATEWAY_RESTARTING, this stop's or its orphan's) still lets the next sweep take it."""
        try:
            released = await asyncio.shield(
                self._store.release_preview_retry(job_id, regeneration, GATEWAY_STOPPED)
            )
        except Exception:
            log.warning("job.unfinished_release_failed", job_id=job_id, exc_info=True)
            return
        log.info("job.unfinished_regeneration_stopped", job_id=job_id, released=released)

    async def _hand_to_bot(self, job: Job, *, withheld: str = "", gone: bool = False) -> int:
        """Queues the `unfinished` event of the job (`withheld`: without its answer, for that
        reason; `gone`: naming no personality, its row is gone); 1 when queued now, 0 when it
        was already."""
        added = await self.group_store.add_event(
            {
                "kind": UNFINISHED_KIND,
                "dedup_key": f"{UNFINISHED_KIND}:{job.id}",
                "job_id": job.id,
                "guild_id": job.guild_id,
                "channel_id": job.channel_id,
                "personality_id": None if gone else job.personality_id,
                "preview_message_ids": list(job.preview_message_ids),
                "reason": withheld,
            }
        )
        if added is None:
            return 0
        self.events.wake()
        log.info("job.unfinished_handed", job_id=job.id, status=job.status.value, withheld=withheld)
        return 1


def names_personality(answer: UnfinishedAnswer) -> bool:
    """Whether the bot is handed the answer's personality: not one being deleted (a replica's
    catalog may still hold it for seconds), so nothing speaks as it."""
    return answer.failed_reason != PERSONALITY_DELETED


def withheld_words(reason: str) -> str:
    """What the preview of an answer withheld for `reason` says instead of it."""
    if reason == PERSONALITY_DELETED:
        return PERSONALITY_DELETED_WORDS
    return user_data_deleting().message


def _failed_for_good(job: Job) -> bool:
    """A failed job with a preview (not regenerable: store/previews.may_regenerate) whose
    regeneration (if any) has ended: it failed after the regeneration began (for another
    reason than its gateway, or its last one's gateway died too), its retry's lease ran out
    unclaimed (the gateway died before the regeneration's claim), or it never needed one (it
    failed for another reason and its bot could not say so; or it was released
    MAX_REGENERATIONS times)."""
    if job.preview_retried_at is None:
        return True
    if job.finished_at is not None and job.finished_at >= job.preview_retried_at:
        return True
    return job.retry_until is None or job.retry_until <= datetime.now(UTC)
