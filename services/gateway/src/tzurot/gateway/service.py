"""Gateway's use-cases: running a job from a client's message to inference and back (the
checks before it: admission.py; delivery and status: delivery_flow.py; which personality:
personality_access.py; jobs left by a stop or a killed gateway, and the sweeps:
job_upkeep.py; shared state: gateway_core.py; wallet: wallet.py).

Plain async code over the store and the ports; the gRPC servicer only converts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import structlog

from tzurot.gateway.admission import Admission, Charges, check_deny_modes
from tzurot.gateway.attachment_reads import read_key, with_reads
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.gateway.clock import Clock, SystemClock
from tzurot.gateway.delivery_flow import DeliveryFlow
from tzurot.gateway.domain import (
    Actor,
    AttachmentRead,
    ConfigSource,
    GenerateCommand,
    GenerateEvent,
    GenerationFinished,
    Job,
    JobAccepted,
    JobError,
    JobStatus,
    Location,
    Personality,
    ReplyChunk,
    ReplyFinished,
    ReplyRequest,
    SkillActivity,
    Usage,
    UsageSpent,
    User,
)
from tzurot.gateway.event_acks import EventAcks
from tzurot.gateway.events import BotEvents
from tzurot.gateway.gateway_core import GatewayLimits, Prepared, refuse_deleting
from tzurot.gateway.group_store import GroupStore
from tzurot.gateway.groups import Groups, ScheduledTurn
from tzurot.gateway.job_context import context_columns
from tzurot.gateway.job_upkeep import GATEWAY_STOPPED, JobUpkeep
from tzurot.gateway.key_uses import KeyUses
from tzurot.gateway.lore import LoreState
from tzurot.gateway.lost_jobs import lost_job_error
from tzurot.gateway.outbox_retention import OutboxRetention
from tzurot.gateway.personality_access import PersonalityAccess, may_use, names_itself
from tzurot.gateway.ports import ExchangeTurns, History, Inference, KeyVault
from tzurot.gateway.ratelimit import QuotaCounter, RateLimiter
from tzurot.gateway.replacement import replaced_job
from tzurot.gateway.settings import (
    KEEP_REASONING,
    MAX_AUDIO,
    MAX_HISTORY_MESSAGES,
    MAX_IMAGES,
    MEMORY_LIMIT,
    MEMORY_THRESHOLD,
    MODEL_FOOTER,
    channel_ids,
    limit_attachments,
)
from tzurot.gateway.store import AdminStore, GatewayStore, NewJob, TurnContext
from tzurot.gateway.store.jobs import JOB_TAKEN_OVER, TURN_KEY_PREFIX, taken_over
from tzurot.gateway.unfinished import UnfinishedAnswers
from tzurot.gateway.voice import decide as decide_voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime import metrics
from tzurot.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    TzurotError,
    error_from_code,
)

__all__ = ["GATEWAY_STOPPED", "Gateway", "GatewayLimits"]

log = structlog.get_logger(__name__)

_DUPLICATE_POLL_SECONDS = 0.1
_CLIENT_CANCELLED = JobError("CANCELLED", "CLIENT_CANCELLED", "the client cancelled")
_UNEXPECTED = JobError("INTERNAL", "INTERNAL", "internal error")
# Claimed, then stopped before it ran (retryable: a resend runs it).
_NOT_STARTED = JobError("CANCELLED", "NOT_STARTED", "the job stopped before it started")
# What a failed job an operator retries is marked with first, so the claim takes it again.
RETRY_REQUESTED = JobError("UNAVAILABLE", "RETRY_REQUESTED", "an operator asked for a retry")


def retry_refused(err: TzurotError) -> JobError:
    """A retry refused before its claim, as the job's error: why, in the refusal's words, and
    still retryable (UNAVAILABLE, as RETRY_REQUESTED was), so a resend may run it."""
    return JobError(RETRY_REQUESTED.code, err.reason or err.code.name, err.message)


class Gateway(Admission, PersonalityAccess, DeliveryFlow, UnfinishedAnswers, EventAcks, JobUpkeep):
    """Orchestrates one message from a client to inference and back, and the admin tasks."""

    def __init__(
        self,
        *,
        store: GatewayStore,
        inference: Inference,
        memory: History,
        keyvault: KeyVault,
        limits: GatewayLimits,
        clock: Clock | None = None,
        turns: ExchangeTurns | None = None,
    ) -> None:
        """`turns`: memory's turns by message, for a 🔄's answer to take the exchange it
        replaces out of history when delivered; without them (a History only) a request's
        `replaces_job_id` is ignored, and the client told so (JobAccepted.replacing false)."""
        self._store = store
        self.clock: Clock = clock or SystemClock()
        self.group_store = GroupStore(store.engine)
        self.events = BotEvents(
            self.group_store,
            self.clock,
            poll_seconds=limits.events_poll_seconds,
            lease_seconds=limits.event_lease_seconds,
        )
        self.groups = Groups(
            self.group_store,
            self.clock,
            lambda where: self.resolved_settings(None, None, where),
            seed=limits.group_seed,
            wake=self.events.wake,
            drop_event=lambda event_id, reason: self.events.ack(event_id, (), reason),
        )
        self.event_retention = OutboxRetention(
            store.engine, self.clock, limits.bot_events_retention_seconds
        )
        self._background: set[asyncio.Task[None]] = set()
        # Wakes the fact extraction worker (app.py sets it when facts are enabled).
        self.facts_waiting: Callable[[], None] = lambda: None
        self._admin_store = AdminStore(store.engine, store.catalog)
        self._voices = VoiceStore(store.engine)
        self._voice_rng = random.Random()  # noqa: S311  # "sometimes" speaks: not security
        self._limiter = RateLimiter(store.engine)
        self._quota = QuotaCounter(store.engine)
        self._inference = inference
        self._memory = memory
        self._turns = turns
        self._keyvault = keyvault
        self._limits = limits
        self.key_uses = KeyUses(keyvault, flush_seconds=limits.key_use_flush_seconds)
        # The jobs this process is running, released (failed-retryable) when it stops.
        self._running: set[str] = set()
        self._stopping = False
        # Jobs delivered while memory was away may wait for their history (at start: maybe).
        self._history_pending = True
        # Greetings posted while memory was away may wait for their history too.
        self._greetings_pending = True

    # ---- conversation ----

    async def generate(
        self, command: GenerateCommand, *, retry: bool = False
    ) -> AsyncGenerator[GenerateEvent, None]:
        """Streams JobAccepted, the answer's chunks in order, then GenerationFinished.

        A duplicate idempotency key replays the existing job instead of generating again.
        A `turn_id` runs a turn the gateway scheduled (groups.py): its payer, place and
        personality come from the gateway's record. `retry`: an operator's RetryJob, not a
        new message in the channel.
        """
        turn = None
        if command.turn_id:
            turn = await self.groups.resolve_turn(command.turn_id, self._store_personality)
            command = turn.command
        self._validate_generate(command, scheduled=turn is not None)
        charges = Charges()
        try:
            job, claimed, fresh, user, personality, prepared = await self._claim_charged(
                command, turn, retry=retry, charges=charges
            )
        except BaseException:
            await self._give_back(charges)  # refused, or a duplicate that waited in vain
            raise
        if fresh:
            try:
                await self.groups.record_job(
                    job,
                    command,
                    personality,
                    turn,
                    state=None if prepared.context is None else prepared.context.channel_round,
                )
            except BaseException:
                # Claimed and `running`, but not run: fail it retryably rather than leave
                # duplicates waiting out its lease.
                await self._fail(job.id, _NOT_STARTED, job.attempts)
                raise
        if not claimed:
            await self._give_back(charges)  # a duplicate: the request that made the job paid
            if turn is not None and job.status is JobStatus.DELIVERED:
                # A turn sent again after its answer was posted: acknowledged with the
                # messages showing it (ConfirmDelivery did that already, unless the turn
                # predates it) and refused, so the bot never posts it twice.
                await self.events.ack(turn.event.id, job.delivered_message_ids, "")
                raise FailedPrecondition("this turn was posted already", reason="TURN_DELIVERED")
            async with contextlib.aclosing(self._replay(job, personality)) as replayed:
                async for event in replayed:
                    yield event
            return
        if not prepared.new_job:
            prepared = await self._charge_claimed(job, user, prepared)
        # aclosing: when our consumer closes this stream, the inner ones must close now (and
        # mark the job), not whenever the garbage collector finalizes them.
        async with contextlib.aclosing(
            self._run_job(
                job, user, personality, command, prepared, directive=turn.directive if turn else ""
            )
        ) as events:
            async for event in events:
                yield event

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
        name is the personality's own (the catalog cache knows it)."""
        personality = await self._store.find_personality(command.personality)  # cached
        if personality is None or not names_itself(personality, command.personality):
            # Maybe the user's own alias: their user first (the slower path, as it always was).
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
            request_type = await self._request_type(user, prepared.config.config, charges)
            if await self.group_store.drop_pending_unfinished(job.id):
                log.info("job.unfinished_taken_up", job_id=job.id)
        except BaseException as err:
            await self._give_back(charges)
            if isinstance(err, TzurotError):
                refusal = retry_refused(err)
            else:  # cut short: by this gateway's stop, as a run is (a regeneration is then
                # generated again by the next sweep: store/previews.may_regenerate)
                refusal = GATEWAY_STOPPED if self._stopping else _NOT_STARTED
            await self._fail(job.id, refusal, job.attempts)
            raise
        return dataclasses.replace(prepared, request_type=request_type, new_job=True)

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

    async def _run_job(
        self,
        job: Job,
        user: User,
        personality: Personality,
        command: GenerateCommand,
        prepared: Prepared,
        *,
        directive: str = "",
    ) -> AsyncGenerator[GenerateEvent, None]:
        """Runs a claimed (and started) job. Whatever stops it early, it ends `failed`.

        Every write is fenced by the run's attempt: a run whose lease ran out (a Postgres
        failover longer than the lease) and whose job another run took over stops at its
        next event and writes nothing, neither the answer nor its usage; so does one whose
        job was deleted with its personality or its user's data, and it ends saying so
        (lost_jobs.py), for the client to show why. Only what helper
        models were paid to read (`AttachmentRead`), and what else inference reports paid
        (`UsageSpent`: a skill's paid calls; a failed reply's answer calls, as failed), is
        recorded as it comes, whatever the answer becomes (attachment_reads.py,
        store/usage_rows.py); and what a reply cut off mid-answer (cancelled, or inference
        dying) was generating, as the gateway estimates it from the text it relayed
        (cancelled_usage.py). A whole answer is stored even when the client goes away while
        it is (`_end_cancelled`)."""
        keep_alive: asyncio.Task[None] | None = None
        attempt = job.attempts
        lost = asyncio.Event()
        relayed = RelayedAnswer()
        finished: ReplyFinished | None = None
        finishing: asyncio.Task[None] | None = None
        request: ReplyRequest | None = None
        self._running.add(job.id)
        try:
            yield JobAccepted(
                job_id=job.id,
                personality=personality,
                replayed=False,
                replacing=bool(job.replaces_job_id),
            )
            keep_alive = asyncio.create_task(self._keep_alive(job.id, attempt, lost))
            request = await self._reply_request(
                job, user, personality, command, prepared, directive=directive
            )
            replies_of = self._replies(request, job, lost, prepared.request_type, relayed)
            async with contextlib.aclosing(replies_of) as replies:
                async for event in replies:
                    if isinstance(event, ReplyChunk | SkillActivity):
                        yield event
                    else:
                        finished = event
            if finished is None:
                raise FailedPrecondition(
                    "inference ended without a final answer", reason="NO_ANSWER"
                )
            # Shielded: a cancel now lands after the answer and its usage are stored, never
            # between (the cancel branch waits for the write: `_end_cancelled`).
            finishing = asyncio.ensure_future(
                self._finish(job, attempt, finished, prepared.request_type, request)
            )
            await asyncio.shield(finishing)
            if request.lore is not None and finished.lore_state is not None:
                await self._save_lore_state(
                    command.location.conversation_id, personality.id, finished.lore_state
                )
        except TzurotError as err:
            # Inference reports what its answer was billed before its own errors (resetting
            # `relayed`); text relayed since then is what it could not report: it died (a
            # restart, SERVICE_RESTARTING), or the gateway cut it off (its deadline, a lost run).
            await asyncio.gather(
                self._keep_relayed(job, prepared, relayed if finished is None else None),
                self._fail(job.id, JobError(err.code.name, err.reason, err.message), attempt),
            )
            # The user's own key refused, by the answer's provider or by a skill's service
            # before the answer failed: `/wallet list` says it is inactive now.
            await self.key_uses.refused(user.id, err, provider=prepared.config.config.provider)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away (or this gateway is stopping): nothing was delivered, so no
            # turn is stored, and the job may be tried again. What the provider had begun
            # generating was billed: estimated, at once with the failure (both shielded). A
            # whole answer is stored all the same (`_end_cancelled`).
            await self._end_cancelled(
                job,
                attempt,
                prepared,
                relayed=relayed,
                finished=finished,
                finishing=finishing,
                request=request,
            )
            raise
        except Exception:
            # A bug, not an outcome: the job must not stay `running` for duplicates to wait on.
            log.exception("job.unexpected_error", job_id=job.id)
            await self._fail(job.id, _UNEXPECTED, attempt)
            raise
        finally:
            self._running.discard(job.id)
            if keep_alive is not None:
                keep_alive.cancel()
        for provider in user_keys_refused(finished):  # a skill's service refused it: inactive
            await self.key_uses.rejected(user.id, provider)
        for provider in user_keys_used(finished):
            self.key_uses.used(user.id, provider)
        metrics.record_job("streamed")
        metrics.record_tokens(
            finished.usage.provider,
            finished.usage.model,
            input_tokens=finished.usage.input_tokens,
            output_tokens=finished.usage.output_tokens,
        )
        log.info(
            "job.streamed",
            job_id=job.id,
            provider=finished.usage.provider,
            model=finished.usage.model,
            input_tokens=finished.usage.input_tokens,
            output_tokens=finished.usage.output_tokens,
        )
        yield GenerationFinished(
            job_id=job.id,
            content=finished.content,
            usage=finished.usage,
            finish_reason=finished.finish_reason,
            reasoning=finished.reasoning if command.include_reasoning else "",
            footer=_footer(finished, prepared),
            files=finished.files,
            speak=bool(finished.content.strip())
            and await self._should_speak(personality, command.location, prepared),
        )

    async def _reply_request(
        self,
        job: Job,
        user: User,
        personality: Personality,
        command: GenerateCommand,
        prepared: Prepared,
        *,
        directive: str,
    ) -> ReplyRequest:
        """What inference is asked for this job (lore and group from the turn's reads).

        A scheduled turn (free will, a chain reply) is said in public to nobody: its payer
        only pays (`shared_context`), their persona and own memories stay out of it."""
        settings = prepared.settings
        scheduled = bool(command.turn_id)
        conversation = command.location.conversation_id
        context = prepared.context
        if context is not None:
            lore, group = context.lore, context.group
        else:
            lore = await self._store.lore_context(personality.id, conversation)
            group = await self.groups.members(command.location)
        return ReplyRequest(
            job_id=job.id,
            user_id=user.id,
            actor=command.actor,
            location=command.location,
            personality=personality,
            config=prepared.config,
            content=command.content,
            references=command.references,
            # Those read by a helper model on an earlier attempt go with that text: not paid twice.
            attachments=with_reads(
                limit_attachments(
                    command.attachments,
                    max_images=int(settings[MAX_IMAGES].value),
                    max_audio=int(settings[MAX_AUDIO].value),
                ),
                dict(job.attachment_reads),
            ),
            timezone=user.timezone,
            max_history_messages=int(settings[MAX_HISTORY_MESSAGES].value),
            include_reasoning=keep_reasoning(command, prepared),
            persona=None if scheduled else prepared.persona,
            memory_threshold=float(settings[MEMORY_THRESHOLD].value),
            memory_limit=int(settings[MEMORY_LIMIT].value),
            mentions=command.mentions,
            lore=lore if lore.books else None,
            group=group,
            directive=directive,
            message_ids=command.message_ids,
            shared_context=scheduled,
            replaces_job_id=job.replaces_job_id,
        )

    async def _should_speak(
        self, personality: Personality, where: Location, prepared: Prepared
    ) -> bool:
        """Whether the answer will be spoken once delivered (tzurot.gateway.voice)."""
        context = prepared.context
        voice = await self._voices.voice(personality.id) if context is None else context.voice
        if voice is None:
            return False
        levels: Mapping[ConfigSource, dict[str, Any]]
        if context is None:
            levels = await self._admin_store.setting_levels(**channel_ids(where))
        else:
            levels = context.setting_levels
        return decide_voice(
            voice, prepared.settings, levels.get(ConfigSource.CHANNEL, {}), self._voice_rng
        )

    async def retry_job(self, job_id: str) -> Job:
        """Runs a failed or orphaned job again (an operator's RetryJob) from what its row
        kept: the message, its author, place and personality (not its attachments).

        The answer stays on the job (streamed) for the client's resend to replay; a failure
        stays on it too. A job that failed for a lasting reason is made retryable first, and
        reads `queued` from then until its claim (store/retries.py); refused before the claim
        (the user's data being deleted, a rate limit, the personality gone), it reads failed
        at once with why, still retryable: a resend may run it.
        """
        job = await self._job(job_id)
        if job.status in (JobStatus.STREAMED, JobStatus.DELIVERED):
            raise FailedPrecondition(
                f"job {job.id} was already answered ({job.status.value})", reason="JOB_ANSWERED"
            )
        if job.idempotency_key.startswith(TURN_KEY_PREFIX):
            raise FailedPrecondition(
                f"job {job.id} is a scheduled turn; its scheduler retries it",
                reason="JOB_IS_SCHEDULED_TURN",
            )
        if job.status is JobStatus.FAILED:
            await self._store.release_failed_job(
                job.id, RETRY_REQUESTED, lease_seconds=self._limits.job_lease_seconds
            )
        refusal: JobError | None = None
        try:
            personality = await self._store_personality(job.personality_id)
            command = GenerateCommand(
                actor=Actor(platform_user_id=job.author_id, display_name=job.author_name),
                location=job.location,
                personality=personality.slug,
                content=job.request_content,
                idempotency_key=job.idempotency_key,
                message_ids=job.request_message_ids,
                replaces_job_id=job.replaces_job_id,
            )
            try:
                async with contextlib.aclosing(self.generate(command, retry=True)) as events:
                    async for _ in events:
                        pass
            except TzurotError as err:
                refusal = retry_refused(err)
                if err.reason in ("JOB_IN_PROGRESS", "IDEMPOTENCY_KEY_REUSED"):
                    raise
                log.info("job.retry_failed", job_id=job.id, reason=err.reason)
        except TzurotError as err:
            refusal = refusal or retry_refused(err)
            raise
        finally:
            # Not claimed (refused, or stopped): it reads failed again now, not a lease
            # later. Claimed, the lease ended with the claim and this changes nothing.
            await asyncio.shield(self._store.end_retry(job.id, refusal))
        log.info("job.retried", job_id=job.id)
        return await self._job(job.id)

    async def _replies(
        self,
        request: ReplyRequest,
        job: Job,
        lost: asyncio.Event,
        request_type: str,
        relayed: RelayedAnswer,
    ) -> AsyncGenerator[ReplyChunk | SkillActivity | ReplyFinished, None]:
        """Inference's events for the job, until the job is no longer this run's (`lost`:
        then why, `_lost`); an attachment read by a helper model is recorded here
        (`_keep_read`), and so is every call paid outside the answer's usage (`UsageSpent`,
        `_keep_spent`), even once the job is lost: what was paid is recorded whichever run
        paid it. The answer's text is counted into `relayed` as it passes, for a cancel."""
        async with contextlib.aclosing(self._inference.generate_reply(request)) as replies:
            async for event in replies:
                if isinstance(event, UsageSpent):
                    relayed.reported(event)
                    await self._keep_spent(request, event, request_type)
                    continue
                if lost.is_set():
                    raise await self._lost(job)
                if isinstance(event, AttachmentRead):
                    await self._keep_read(request, event)
                    continue
                if isinstance(event, ReplyChunk):
                    relayed.relayed(event.text)
                yield event

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
        carries, estimated from the text relayed (input 0, ~4 characters a token:
        cancelled_usage.py), one failed, estimated usage row under the job's model and kind.
        Nothing when nothing was relayed, or the answer had finished (its usage is the
        job's)."""
        config = prepared.config.config
        usage = None if relayed is None else relayed.estimate(config.provider, config.model)
        if usage is not None and await self._keep_unfinished(job, prepared, usage):
            log.info(
                "job.relayed_usage_estimated", job_id=job.id, output_tokens=usage.output_tokens
            )

    async def _keep_unfinished(self, job: Job, prepared: Prepared, usage: Usage) -> bool:
        """One failed usage row (paid, not delivered) under the job's kind: one short insert,
        shielded; a refused write is logged, not raised (the failure goes on). Whether kept."""
        try:
            await asyncio.shield(
                self._store.record_spent_usage(
                    job.id,
                    job.user_id,
                    (usage,),
                    job_request_type=prepared.request_type,
                    failed=True,
                )
            )
        except Exception:
            log.exception("job.unfinished_usage_not_recorded", job_id=job.id)
            return False
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
        error = GATEWAY_STOPPED if self._stopping else _CLIENT_CANCELLED
        if finished is None or request is None:
            await asyncio.gather(
                self._keep_relayed(job, prepared, relayed), self._fail(job.id, error, attempt)
            )
            return
        if finishing is None:  # inference's stream had not ended yet: the write begins now
            finishing = asyncio.ensure_future(
                self._finish(job, attempt, finished, prepared.request_type, request)
            )
        await _settled(finishing)
        if not finishing.cancelled() and finishing.exception() is None:
            log.info("job.finished_despite_cancel", job_id=job.id, reason=error.reason)
            return
        if await self._fail(job.id, error, attempt):
            await self._keep_unfinished(job, prepared, finished.usage)

    async def _keep_read(self, request: ReplyRequest, read: AttachmentRead) -> None:
        """Records what a helper model read for the job: each call's usage now, whatever the
        answer becomes, and the text for the job's next attempt (attachment_reads.py).
        Shielded, as a failure's record is. A refused write is logged, not fatal: the answer
        it was paid for still goes on. A key of the user's that refused a call the reading
        did without (a transcript's clean-up) turns inactive, as a refused answer's does."""
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
            await self.key_uses.rejected(request.user_id, provider)
        for paid in read.paid:
            metrics.record_tokens(
                paid.provider,
                paid.model,
                input_tokens=paid.input_tokens,
                output_tokens=paid.output_tokens,
            )

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
                context_columns(finished, include_reasoning=request.include_reasoning),
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
        self, job: Job, personality: Personality
    ) -> AsyncGenerator[GenerateEvent, None]:
        """A duplicate request of a finished job: repeat its outcome."""
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
            files=await self._store.job_files(job.id),
        )

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


async def _settled(task: asyncio.Task[None]) -> None:
    """Waits until `task` ended (its outcome is its own to read), whatever cancels this wait
    meanwhile: a write in flight ends before the cancel that interrupted it goes on."""
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            continue  # the caller re-raises the cancel it is handling
    if not task.cancelled() and task.exception() is not None:
        log.warning("job.finish_not_stored", error=repr(task.exception()))


def _job_error(job: Job) -> TzurotError:
    error = job.error
    if error is None:
        return FailedPrecondition(f"job {job.id} failed", reason="JOB_FAILED")
    return error_from_code(error.code, error.message, reason=error.reason)


def keep_reasoning(command: GenerateCommand, prepared: Prepared) -> bool:
    """Reasoning is kept for Inspect when the client asks or the user's setting says so."""
    return command.include_reasoning or bool(prepared.settings[KEEP_REASONING].value)


def _footer(finished: ReplyFinished, prepared: Prepared) -> str:
    """The answering model, when the model_footer setting is on."""
    if not prepared.settings[MODEL_FOOTER].value:
        return ""
    return f"{finished.usage.provider}/{finished.usage.model}"


def user_keys_used(finished: ReplyFinished) -> list[str]:
    """Every key of the user's wallet a reply used (the answer's provider, image description,
    transcription, skills), so `/wallet list` shows when each was last used."""
    if finished.report is None:
        return []
    used = set(finished.report.user_key_providers)
    if finished.report.key_source == "user":
        used.add(finished.usage.provider)
    return sorted(used)


def user_keys_refused(finished: ReplyFinished) -> list[str]:
    """Every key of the user's wallet a call of the reply refused (401) though the reply went
    on (a skill's service), to be marked inactive as a refused answer's key is. A key the
    answer itself was then accepted with is not: it works (it is marked used)."""
    if finished.report is None:
        return []
    return sorted(set(finished.report.refused_key_providers) - set(user_keys_used(finished)))
