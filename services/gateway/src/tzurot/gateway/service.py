"""Gateway's use-cases: running a job from a client's message to inference and back (the
checks before it: admission.py; its claim: job_claims.py; what inference is asked:
reply_requests.py; what the run was billed: usage_keeping.py; its outcomes: job_outcomes.py;
delivery and status: delivery_flow.py; which personality: personality_access.py; jobs left by
a stop or a killed gateway, and the sweeps: job_upkeep.py; shared state: gateway_core.py;
wallet: wallet.py).

Plain async code over the store and the ports; the gRPC servicer only converts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, Callable
from datetime import datetime

import structlog

from tzurot.gateway.admission import Charges
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.gateway.clock import Clock, SystemClock
from tzurot.gateway.delivery_flow import DeliveryFlow
from tzurot.gateway.domain import (
    Actor,
    AttachmentRead,
    GenerateCommand,
    GenerateEvent,
    GenerationFinished,
    HelperCallPending,
    Job,
    JobAccepted,
    JobError,
    JobStatus,
    KeyRefused,
    Personality,
    PromptSent,
    ReplyChunk,
    ReplyFinished,
    ReplyRequest,
    RoundsBilled,
    SkillActivity,
    UsageSpent,
    User,
)
from tzurot.gateway.event_acks import EventAcks
from tzurot.gateway.events import BotEvents
from tzurot.gateway.gateway_core import GatewayLimits, Prepared
from tzurot.gateway.group_store import GroupStore
from tzurot.gateway.groups import Groups
from tzurot.gateway.job_claims import NOT_STARTED, RETRY_REQUESTED, JobClaims, retry_refused
from tzurot.gateway.job_upkeep import GATEWAY_STOPPED, JobUpkeep
from tzurot.gateway.key_uses import KeyUses
from tzurot.gateway.outbox_retention import OutboxRetention
from tzurot.gateway.ports import ExchangeTurns, History, Inference, KeyVault
from tzurot.gateway.provider_list import KNOWN_PROVIDERS, FixedProviders, ProviderNames
from tzurot.gateway.ratelimit import QuotaCounter, RateLimiter
from tzurot.gateway.reply_requests import ReplyRequests, footer, shown_reasoning
from tzurot.gateway.run_limit import past_run_limit
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.gateway.unfinished import UnfinishedAnswers
from tzurot.gateway.usage_keeping import UsageKeeping
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime import metrics
from tzurot.runtime.errors import FailedPrecondition, TzurotError

__all__ = ["GATEWAY_STOPPED", "RETRY_REQUESTED", "Gateway", "GatewayLimits"]

log = structlog.get_logger(__name__)

_UNEXPECTED = JobError("INTERNAL", "INTERNAL", "internal error")


class Gateway(
    JobClaims, UsageKeeping, ReplyRequests, DeliveryFlow, UnfinishedAnswers, EventAcks, JobUpkeep
):
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
        providers: ProviderNames | None = None,
    ) -> None:
        """`turns`: memory's turns by message, for a 🔄's answer to take the exchange it
        replaces out of history when delivered; without them (a History only) a request's
        `replaces_job_id` is ignored, and the client told so (JobAccepted.replacing false).
        `providers`: inference's (app.py's cached `InferenceProviders`), which say which
        providers take no key; without them only the built-in local speech servers do."""
        self._store = store
        self.providers = providers or FixedProviders(KNOWN_PROVIDERS)
        self.clock: Clock = clock or SystemClock()
        self.group_store = GroupStore(store.engine, self.clock)
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
                await self._fail(job.id, NOT_STARTED, job.attempts)
                raise
        if not claimed:
            await self._give_back(charges)  # a duplicate: the request that made the job paid
            if turn is not None and job.status is JobStatus.DELIVERED:
                # A turn sent again after its answer was posted: acknowledged with the
                # messages showing it (ConfirmDelivery did that already, unless the turn
                # predates it) and refused, so the bot never posts it twice.
                await self.events.ack(turn.event.id, job.delivered_message_ids, "")
                raise FailedPrecondition("this turn was posted already", reason="TURN_DELIVERED")
            async with contextlib.aclosing(
                self._replay(job, personality, prepared.settings)
            ) as replayed:
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

    async def _end_failed(
        self,
        job: Job,
        attempt: int,
        err: TzurotError,
        *,
        user: User,
        prepared: Prepared,
        relayed: RelayedAnswer | None,
        marked: frozenset[str] = frozenset(),
        taken_after: datetime | None = None,
    ) -> None:
        """A run that failed with `err`: the job fails, what it relayed unreported is kept
        estimated, and the user's own key its provider refused reads inactive (`/wallet list`),
        whether the answer's provider or a skill's service refused it (not again those
        `marked` already as inference said so, KeyRefused; not a key stored after the run
        began, `taken_after`: not the one refused). Raises JOB_RUN_LIMIT
        instead of `err` when this was the job's last run allowed and `err` would have let
        it run again: the store wrote so on the job, and the client reads it now
        (run_limit.py)."""
        await asyncio.gather(
            self._keep_relayed(job, prepared, relayed),
            self._fail(job.id, JobError(err.code.name, err.reason, err.message), attempt),
        )
        await self.key_uses.refused(
            user.id,
            err,
            provider=prepared.config.config.provider,
            already=marked,
            taken_after=taken_after,
        )
        final = past_run_limit(err, attempt, self._store.max_runs)
        if final is not None:
            raise final from err

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
        dying) was billed, as the gateway estimates it from the prompts inference said the
        provider began answering, the rounds it reported billed and the text it relayed
        (cancelled_usage.py, usage_keeping.py). A whole answer is stored even when the client
        goes away while it is (`_end_cancelled`)."""
        keep_alive: asyncio.Task[None] | None = None
        attempt = job.attempts
        lost = asyncio.Event()
        relayed = RelayedAnswer()
        marked: set[str] = set()  # wallet keys marked inactive as inference said (KeyRefused)
        # Before inference is asked: every wallet key this run uses is read after it, so a
        # key the user stores meanwhile is not the one its uses and refusals are of.
        taken_after = self.key_uses.now()
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
            replies_of = self._replies(
                request,
                job,
                lost,
                prepared.request_type,
                relayed,
                marked=marked,
                taken_after=taken_after,
            )
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
            await self._end_failed(
                job,
                attempt,
                err,
                user=user,
                prepared=prepared,
                relayed=relayed if finished is None else None,
                marked=frozenset(marked),
                taken_after=taken_after,
            )
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
        # A skill's service refused it: inactive; once (those marked as inference said so).
        for provider in sorted(set(user_keys_refused(finished)) - marked):
            await self.key_uses.rejected(user.id, provider, taken_after=taken_after)
        for provider in user_keys_used(finished):
            self.key_uses.used(user.id, provider, taken_after=taken_after)
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
            reasoning=shown_reasoning(finished, command, prepared),
            footer=footer(finished, prepared, job),
            files=finished.files,
            speak=bool(finished.content.strip())
            and await self._should_speak(personality, command.location, prepared),
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
        *,
        marked: set[str],
        taken_after: datetime,
    ) -> AsyncGenerator[ReplyChunk | SkillActivity | ReplyFinished, None]:
        """Inference's events for the job, until the job is no longer this run's (`lost`:
        then why, `_lost`); an attachment read by a helper model is recorded here
        (`_keep_read`), and so is every call paid outside the answer's usage (`UsageSpent`,
        `_keep_spent`), even once the job is lost: what was paid is recorded whichever run
        paid it. The answer's prompts answered, rounds billed and text are kept in `relayed`
        as they pass, for a cancel (cancelled_usage.py), and so are the helper calls the
        provider has until their outcome comes (or inference's own error ends the stream). A
        wallet key inference says was refused (KeyRefused) is marked inactive at once, once
        (noted in `marked`: sent, or kept for the next flush should keyvault not take it),
        whatever becomes of the reply: a reply that never ends would otherwise leave it
        active. Only the key read after `taken_after` (the run's start), never one the user
        stored since."""
        async with (
            contextlib.aclosing(self._inference.generate_reply(request)) as replies,
            contextlib.aclosing(relayed.watching(replies)) as events,
        ):
            async for event in events:
                if isinstance(event, UsageSpent):
                    relayed.reported(event)
                    await self._keep_spent(request, event, request_type)
                    continue
                if isinstance(event, PromptSent):
                    relayed.prompt_sent(event)
                    continue
                if isinstance(event, RoundsBilled):
                    relayed.rounds_billed(event)
                    continue
                if isinstance(event, HelperCallPending):
                    relayed.helper_call_pending(event)
                    continue
                if isinstance(event, KeyRefused):
                    if event.provider not in marked:
                        marked.add(event.provider)
                        await self.key_uses.rejected(
                            request.user_id, event.provider, taken_after=taken_after
                        )
                    continue
                if isinstance(event, AttachmentRead):  # paid: recorded even once lost
                    relayed.read(event)
                    await self._keep_read(request, event, taken_after)
                    if lost.is_set():
                        raise await self._lost(job)
                    continue
                if lost.is_set():
                    raise await self._lost(job)
                if isinstance(event, ReplyChunk):
                    relayed.relayed(event.text)
                yield event


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
