"""Claiming a job for a client's message: the request admitted (admission.py) and charged,
its job claimed, or a duplicate's job waited for (or taken over once abandoned); a job
claimed again (a retry, one taken over) charged when claimed."""

from __future__ import annotations

import asyncio
import dataclasses

import structlog

from tzurot.gateway.admission import Admission, Charges, check_deny_modes
from tzurot.gateway.domain import GenerateCommand, Job, JobError, Personality, User
from tzurot.gateway.gateway_core import Prepared, refuse_deleting
from tzurot.gateway.groups import ScheduledTurn
from tzurot.gateway.job_outcomes import JobOutcomes
from tzurot.gateway.job_upkeep import GATEWAY_STOPPED
from tzurot.gateway.personality_access import PersonalityAccess, is_slug_of, may_use
from tzurot.gateway.replacement import replaced_job
from tzurot.gateway.store import NewJob, TurnContext
from tzurot.gateway.store.id_names import is_id
from tzurot.runtime.errors import AlreadyExists, FailedPrecondition, TzurotError

log = structlog.get_logger(__name__)

_DUPLICATE_POLL_SECONDS = 0.1
# Claimed, then stopped before it ran (retryable: a resend runs it).
NOT_STARTED = JobError("CANCELLED", "NOT_STARTED", "the job stopped before it started")
# What a failed job an operator retries is marked with first, so the claim takes it again.
RETRY_REQUESTED = JobError("UNAVAILABLE", "RETRY_REQUESTED", "an operator asked for a retry")


def retry_refused(err: TzurotError) -> JobError:
    """A retry refused before its claim, as the job's error: why, in the refusal's words, and
    still retryable (UNAVAILABLE, as RETRY_REQUESTED was), so a resend may run it."""
    return JobError(RETRY_REQUESTED.code, err.reason or err.code.name, err.message)


class JobClaims(Admission, PersonalityAccess, JobOutcomes):
    """A message's job claimed, charged (`Gateway.generate` calls these)."""

    _stopping: bool  # job_upkeep.py's

    async def _claim_charged(
        self, command: GenerateCommand, turn: ScheduledTurn | None, *, retry: bool, charges: Charges
    ) -> tuple[Job, bool, bool, User, Personality, Prepared]:
        """Admits the request (charging it into `charges`) and claims its job: (the job,
        whether this request runs it, whether it is a new claim to record, the user, the
        personality, what the job uses). A duplicate of a job still running waits for it
        (`_wait_for`)."""
        # A human message marks the channel not quiet (a scheduled turn or a retry is not one).
        user, personality, prepared = await self._admit(
            command, note=not retry and not command.turn_id, charges=charges
        )
        replaces = ""
        if self._turns is not None:  # else the client removes the old exchange itself
            replaces = await replaced_job(self._store, command, user, personality)
        new = NewJob(
            idempotency_key=command.idempotency_key,
            user_id=user.id,
            personality_id=personality.id,
            guild_id=command.location.guild_id,
            channel_id=command.location.conversation_id,
            request_content=command.content,
            request_message_ids=command.message_ids,
            author_id=command.actor.platform_user_id,
            author_name=command.actor.display_name,
            parent_channel_id=command.location.channel_id if command.location.thread_id else "",
            nsfw_channel=command.location.nsfw_channel,
            replaces_job_id=replaces,
        )
        job, claimed = await self._claim(new)
        if claimed:
            return job, True, True, user, personality, prepared
        if (job.user_id, job.personality_id) != (user.id, personality.id):
            # Never replay someone else's answer: the key names another request.
            raise AlreadyExists(
                "this idempotency key was already used for another request",
                reason="IDEMPOTENCY_KEY_REUSED",
            )
        job, claimed = await self._wait_for(job, new)
        return job, claimed, False, user, personality, prepared

    async def _admit(
        self, command: GenerateCommand, *, note: bool, charges: Charges
    ) -> tuple[User, Personality, Prepared]:
        """The checks before a job, in order (the personality, the denylist, NSFW, rate
        limits), and what it will use. The reads are one statement (`_turn_context`) when the
        name is the personality's slug (what the bot sends; the catalog cache knows it): a
        slug means its personality for everyone (`find_personality_for`)."""
        personality = await self._store.find_personality(command.personality)  # cached
        if (
            personality is None
            or is_id(command.personality)  # an id means its personality alone, never a slug
            or not is_slug_of(personality, command.personality)
        ):
            # Any other name may be the user's own alias, which comes before display names
            # (as in slash commands): their user first (the slower path, as it always was).
            if note:
                await self.groups.note_message(command)
                note = False
            personality = await self._usable_personality(
                command.personality, await self.user(command.actor)
            )
        context = await self._turn_context(command, personality, note=note)
        # None: the user was created concurrently; then the separate reads, as before.
        user = await self.user(command.actor) if context is None else context.user
        refuse_deleting(user)  # the turn's statement read them without `user()`
        if not may_use(personality, user):
            # Someone else's private personality of that name hides none this user may use
            # (NOT_FOUND when there is none): the reads again, for the one they may.
            personality = await self._usable_personality(command.personality, user)
            context = await self._turn_context(command, personality, note=False)
            user = await self.user(command.actor) if context is None else context.user
        if context is None:
            await self._check_denylist(user, command.location, personality)
            job_exists = await self._store.get_job_by_key(command.idempotency_key) is not None
        else:
            check_deny_modes(user, context.deny_modes)
            job_exists = context.job_exists
        user = await self._check_nsfw(user, personality, command.location)
        if not job_exists:  # a duplicate or a retry is not a new message: no token taken
            await self._take_rate_tokens(user, command.location, charges)
        prepared = await self._prepare(
            user,
            personality,
            command.location,
            new=not job_exists,
            context=context,
            charges=charges,
        )
        return user, personality, prepared

    async def _turn_context(
        self, command: GenerateCommand, personality: Personality, *, note: bool
    ) -> TurnContext | None:
        """The turn's reads, with the user's upsert and (`note`) the channel noted: one
        statement (store/turn.py)."""
        actor = command.actor
        return await self._store.turn_context(
            actor,
            superuser=actor.platform_user_id in self._limits.superusers,
            personality_id=personality.id,
            personality_slug=personality.slug,
            where=command.location,
            idempotency_key=command.idempotency_key,
            note_message=note,
            round_id=command.round_id,
            now=self.clock.now(),
        )

    async def _claim(self, new: NewJob) -> tuple[Job, bool]:
        return await self._store.claim_job(
            new, lease_seconds=self._limits.job_lease_seconds, start=True
        )

    async def _charge_claimed(self, job: Job, user: User, prepared: Prepared) -> Prepared:
        """A job claimed again (a retry, or one taken over after its lease) runs inference
        again: it is charged and logged as the new job was (a guest's within their share),
        and a hand-over of it as abandoned, queued while its bot waited to ask for it again,
        is deleted (`drop_pending_unfinished`). Refused or cut short (this gateway stopping),
        it ends failed retryably: refused, with the refusal's reason and words (a guest's spent
        budget); cut short, as a job that never started. A refusal gives back what it took."""
        charges = Charges()
        try:
            request_type, config = await self._admit_payer(user, prepared.config, charges)
            if await self.group_store.drop_pending_unfinished(job.id):
                log.info("job.unfinished_taken_up", job_id=job.id)
        except BaseException as err:
            await self._give_back(charges)
            if isinstance(err, TzurotError):
                refusal = retry_refused(err)
            else:  # cut short: by this gateway's stop, as a run is (a regeneration is then
                # generated again by the next sweep: store/previews.may_regenerate)
                refusal = GATEWAY_STOPPED if self._stopping else NOT_STARTED
            await self._fail(job.id, refusal, job.attempts)
            raise
        return dataclasses.replace(prepared, config=config, request_type=request_type, new_job=True)

    async def _wait_for(self, job: Job, new: NewJob) -> tuple[Job, bool]:
        """A duplicate: wait until the original job ends, or claim it when it is abandoned.

        The wait is short (duplicate_wait_seconds, by default just past the lease): an
        orphaned job (its gateway was killed) is taken over once its lease runs out, and a job
        still alive elsewhere is answered "in progress" rather than waited on in silence.
        """
        deadline = asyncio.get_running_loop().time() + self._limits.duplicate_wait_seconds
        claimed = False
        while not claimed and not job.status.terminal:
            if asyncio.get_running_loop().time() > deadline:
                raise FailedPrecondition(
                    "this message is still being answered (job "
                    f"{job.id} is {job.status.value}); try again in a moment",
                    reason="JOB_IN_PROGRESS",
                    metadata={"job_id": job.id},
                )
            await asyncio.sleep(_DUPLICATE_POLL_SECONDS)
            job, claimed = await self._claim(new)  # claims only a job whose lease expired
        return job, claimed
