"""Gateway's use-cases: generate, deliver, job status and personalities (wallet: wallet.py).

Plain async code over the store and the ports; the gRPC servicer only converts.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

import structlog

from tzurot.gateway import settings as settings_cascade
from tzurot.gateway.clock import Clock, SystemClock
from tzurot.gateway.domain import (
    Actor,
    ConfigSource,
    DenyMode,
    GenerateCommand,
    GenerateEvent,
    GenerationFinished,
    HistoryTurn,
    Job,
    JobAccepted,
    JobContext,
    JobError,
    JobStatus,
    LlmConfig,
    Location,
    Persona,
    Personality,
    ReplyChunk,
    ReplyFinished,
    ReplyRequest,
    ResolvedConfig,
    SkillActivity,
    User,
)
from tzurot.gateway.events import BotEvents
from tzurot.gateway.group_store import GroupStore
from tzurot.gateway.groups import TURN_KEY_PREFIX, Groups
from tzurot.gateway.job_context import context_columns, load_context, skill_notes
from tzurot.gateway.key_uses import KeyUses
from tzurot.gateway.paging import Page, PageRequest, page_size, paginate
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.ports import History, Inference, KeyVault
from tzurot.gateway.ratelimit import Bucket, BucketPolicy, QuotaCounter, RateLimiter
from tzurot.gateway.resolve import resolve_llm_config
from tzurot.gateway.settings import (
    KEEP_REASONING,
    MAX_AUDIO,
    MAX_HISTORY_MESSAGES,
    MAX_IMAGES,
    MEMORY_LIMIT,
    MEMORY_THRESHOLD,
    MODEL_FOOTER,
    limit_attachments,
)
from tzurot.gateway.store import AdminStore, GatewayStore, NewJob
from tzurot.gateway.voice import decide as decide_voice
from tzurot.gateway.voice_store import VoiceStore
from tzurot.runtime import metrics
from tzurot.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    TzurotError,
    error_from_code,
    quoted,
)

log = structlog.get_logger(__name__)

MAX_ID_CHARS = 200
_DUPLICATE_POLL_SECONDS = 0.1
_CLIENT_CANCELLED = JobError("CANCELLED", "CLIENT_CANCELLED", "the client cancelled")
_UNEXPECTED = JobError("INTERNAL", "INTERNAL", "internal error")
INVALID_API_KEY = "INVALID_API_KEY"
# What a failed job an operator retries is marked with first, so the claim takes it again.
RETRY_REQUESTED = JobError("UNAVAILABLE", "RETRY_REQUESTED", "an operator asked for a retry")
# What a job running when its gateway stops (SIGTERM) keeps: retryable (jobs.RETRYABLE_CODES),
# so the same message sent again is answered at once by whichever gateway gets it.
GATEWAY_STOPPED = JobError(
    "UNAVAILABLE",
    "GATEWAY_RESTARTING",
    "the gateway is restarting; send the message again in a moment",
)


@dataclass(frozen=True)
class GatewayLimits:
    max_message_chars: int
    max_history_messages: int
    duplicate_wait_seconds: float
    default_config: LlmConfig
    # A running job whose heartbeat is older than this was abandoned (its gateway died); its
    # runner renews the heartbeat every quarter of it.
    job_lease_seconds: float = 20.0
    # Platform user ids made superusers on sight (TZUROT_SUPERUSERS).
    superusers: frozenset[str] = frozenset()
    # Token buckets per user and per channel; None disables one. Superusers are exempt.
    user_bucket: BucketPolicy | None = None
    channel_bucket: BucketPolicy | None = None
    # Guest mode: users without a key on `free_use` configs, within a fair share.
    guest_mode: bool = True
    guest_daily_budget: int = 500
    guest_user_bucket: BucketPolicy | None = None
    # `tzurot up --demo`: every config counts as free_use (TZUROT_DEMO_ALL_FREE).
    demo_all_free: bool = False
    # Group channels: the seed of speaker selection ("" draws one per process).
    group_seed: str = ""
    # The bot event stream: how often a quiet stream looks for new events, and how long a
    # subscriber holds an unacknowledged event before it is sent again.
    events_poll_seconds: float = 1.0
    event_lease_seconds: float = 60.0
    # Memory consolidation every this many delivered exchanges (0: only the CronJob).
    consolidate_every: int = 0
    # Key uses (keyvault's "last used") are sent in a batch this often.
    key_use_flush_seconds: float = 10.0
    # Delivered exchanges wait in memory for fact extraction (gateway's FactExtraction).
    extract_facts: bool = False


@dataclass(frozen=True)
class _Prepared:
    """Everything resolved for one generation before its job is claimed."""

    config: ResolvedConfig
    settings: dict[str, settings_cascade.ResolvedSetting]
    persona: Persona | None
    request_type: str


class Gateway:
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
    ) -> None:
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
            lambda conversation: self.resolved_settings(None, None, conversation),
            seed=limits.group_seed,
            wake=self.events.wake,
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
        self._keyvault = keyvault
        self._limits = limits
        self.key_uses = KeyUses(keyvault, flush_seconds=limits.key_use_flush_seconds)
        # The jobs this process is running, released (failed-retryable) when it stops.
        self._running: set[str] = set()
        self._stopping = False

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
        if not retry:
            await self.groups.note_message(command)
        user = await self.user(command.actor)
        personality = await self._usable_personality(command.personality, user)
        await self._check_denylist(user, command.location, personality)
        user = await self._check_nsfw(user, personality, command.location)
        existing = await self._store.get_job_by_key(command.idempotency_key)
        if existing is None:  # a duplicate or a retry is not a new message: no token taken
            await self._take_rate_tokens(user, command.location)
        prepared = await self._prepare(user, personality, command.location, new=existing is None)
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
        )
        job, claimed = await self._claim(new)
        if claimed:
            await self.groups.record_job(job, command, personality, turn)
        if not claimed:
            if (job.user_id, job.personality_id) != (user.id, personality.id):
                # Never replay someone else's answer: the key names another request.
                raise AlreadyExists(
                    "this idempotency key was already used for another request",
                    reason="IDEMPOTENCY_KEY_REUSED",
                )
            job, claimed = await self._wait_for(job, new)
        if not claimed:
            async with contextlib.aclosing(self._replay(job, personality)) as replayed:
                async for event in replayed:
                    yield event
            return
        # aclosing: when our consumer closes this stream, the inner ones must close now (and
        # mark the job), not whenever the garbage collector finalizes them.
        async with contextlib.aclosing(
            self._run_job(
                job, user, personality, command, prepared, directive=turn.directive if turn else ""
            )
        ) as events:
            async for event in events:
                yield event

    async def _claim(self, new: NewJob) -> tuple[Job, bool]:
        return await self._store.claim_job(
            new, lease_seconds=self._limits.job_lease_seconds, start=True
        )

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
        prepared: _Prepared,
        *,
        directive: str = "",
    ) -> AsyncGenerator[GenerateEvent, None]:
        """Runs a claimed (and started) job. Whatever stops it early, it ends `failed`."""
        keep_alive: asyncio.Task[None] | None = None
        self._running.add(job.id)
        try:
            yield JobAccepted(job_id=job.id, personality=personality, replayed=False)
            keep_alive = asyncio.create_task(self._keep_alive(job.id))
            settings = prepared.settings
            conversation = command.location.conversation_id
            lore = await self._store.lore_context(personality.id, conversation)
            # Reasoning is kept for Inspect when the client asks or the user's setting says so.
            keep_reasoning = command.include_reasoning or bool(settings[KEEP_REASONING].value)
            request = ReplyRequest(
                job_id=job.id,
                user_id=user.id,
                actor=command.actor,
                location=command.location,
                personality=personality,
                config=prepared.config,
                content=command.content,
                references=command.references,
                attachments=limit_attachments(
                    command.attachments,
                    max_images=int(settings[MAX_IMAGES].value),
                    max_audio=int(settings[MAX_AUDIO].value),
                ),
                timezone=user.timezone,
                max_history_messages=int(settings[MAX_HISTORY_MESSAGES].value),
                include_reasoning=keep_reasoning,
                persona=prepared.persona,
                memory_threshold=float(settings[MEMORY_THRESHOLD].value),
                memory_limit=int(settings[MEMORY_LIMIT].value),
                mentions=command.mentions,
                lore=lore if lore.books else None,
                group=await self.groups.members(command.location),
                directive=directive,
                message_ids=command.message_ids,
            )
            finished: ReplyFinished | None = None
            async with contextlib.aclosing(self._inference.generate_reply(request)) as replies:
                async for event in replies:
                    if isinstance(event, ReplyChunk | SkillActivity):
                        yield event
                    else:
                        finished = event
            if finished is None:
                raise FailedPrecondition(
                    "inference ended without a final answer", reason="NO_ANSWER"
                )
            await self._store.finish_job(
                job.id,
                finished.content,
                finished.usage,
                prepared.request_type,
                context_columns(finished, include_reasoning=keep_reasoning),
            )
            if request.lore is not None and finished.lore_state is not None:
                # Sticky, cooldown and delay count this conversation's messages: kept here
                # (per channel and personality) so they survive restarts.
                await self._store.save_lore_state(conversation, personality.id, finished.lore_state)
        except TzurotError as err:
            await self._fail(job.id, JobError(err.code.name, err.reason, err.message))
            if err.reason == INVALID_API_KEY and err.metadata.get("key_source") == "user":
                # The user's own key was refused: `/wallet list` says it is inactive now.
                provider = err.metadata.get("provider") or prepared.config.config.provider
                await self.key_uses.rejected(user.id, provider)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away (or this gateway is stopping): nothing was delivered, so no
            # turn is stored, and the job may be tried again.
            await self._fail(job.id, GATEWAY_STOPPED if self._stopping else _CLIENT_CANCELLED)
            raise
        except Exception:
            # A bug, not an outcome: the job must not stay `running` for duplicates to wait on.
            log.exception("job.unexpected_error", job_id=job.id)
            await self._fail(job.id, _UNEXPECTED)
            raise
        finally:
            self._running.discard(job.id)
            if keep_alive is not None:
                keep_alive.cancel()
        if finished.report is not None and finished.report.key_source == "user":
            self.key_uses.used(user.id, finished.usage.provider)
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

    async def _should_speak(
        self, personality: Personality, where: Location, prepared: _Prepared
    ) -> bool:
        """Whether the answer will be spoken once delivered (tzurot.gateway.voice)."""
        voice = await self._voices.voice(personality.id)
        if voice is None:
            return False
        levels = await self._admin_store.setting_levels(channel_id=where.conversation_id)
        return decide_voice(
            voice, prepared.settings, levels.get(ConfigSource.CHANNEL, {}), self._voice_rng
        )

    async def retry_job(self, job_id: str) -> Job:
        """Runs a failed or orphaned job again (an operator's RetryJob) from what its row
        kept: the message, its author, place and personality (not its attachments).

        The answer stays on the job (streamed) for the client's resend to replay; a failure
        stays on it too. A job that failed for a lasting reason is made retryable first.
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
            await self._store.release_failed_job(job.id, RETRY_REQUESTED)
        personality = await self._store_personality(job.personality_id)
        command = GenerateCommand(
            actor=Actor(platform_user_id=job.author_id, display_name=job.author_name),
            location=Location(guild_id=job.guild_id, channel_id=job.channel_id),
            personality=personality.slug,
            content=job.request_content,
            idempotency_key=job.idempotency_key,
            message_ids=job.request_message_ids,
        )
        try:
            async with contextlib.aclosing(self.generate(command, retry=True)) as events:
                async for _ in events:
                    pass
        except TzurotError as err:
            if err.reason in ("JOB_IN_PROGRESS", "IDEMPOTENCY_KEY_REUSED"):
                raise
            log.info("job.retry_failed", job_id=job.id, reason=err.reason)
        log.info("job.retried", job_id=job.id)
        return await self._job(job.id)

    def stopping(self) -> None:
        """This process is shutting down: jobs cancelled from now on end GATEWAY_RESTARTING."""
        self._stopping = True

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

    async def _fail(self, job_id: str, error: JobError) -> None:
        """Marks the job failed; shielded, so a cancelled stream still records why."""
        await asyncio.shield(self._store.fail_job(job_id, error))
        metrics.record_job("failed", error.reason)
        log.info("job.failed", job_id=job_id, code=error.code, reason=error.reason)

    async def _replay(
        self, job: Job, personality: Personality
    ) -> AsyncGenerator[GenerateEvent, None]:
        """A duplicate request of a finished job: repeat its outcome."""
        if job.status is JobStatus.FAILED:
            raise _job_error(job)
        metrics.record_job("replayed")
        yield JobAccepted(job_id=job.id, personality=personality, replayed=True)
        if job.content:
            yield ReplyChunk(job.content)
        yield GenerationFinished(
            job_id=job.id, content=job.content, usage=job.usage, finish_reason="stop"
        )

    async def confirm_delivery(self, job_id: str, message_ids: Sequence[str]) -> Job:
        """The answer was posted: store the exchange in history, then mark the job delivered."""
        job = await self._job(job_id)
        if job.status is JobStatus.DELIVERED:
            return job
        if job.status is not JobStatus.STREAMED:
            raise FailedPrecondition(
                f"job {job_id} is {job.status.value}; only a streamed job can be delivered",
                reason="JOB_NOT_STREAMED",
            )
        personality = await self._store_personality(job.personality_id)
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
        if not job.idempotency_key.startswith(TURN_KEY_PREFIX):
            # A scheduled turn answered no human message: then only the answer is history.
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
        await self._memory.store_exchange(
            job_id=job.id,
            conversation_id=job.channel_id,
            personality_id=job.personality_id,
            user_id=job.user_id,
            turns=turns,
            # The signal of use that reinforces long-term memories (retrieval alone does not).
            used_memory_ids=context.report.memory_ids if context.report is not None else (),
            extract_facts=self._limits.extract_facts and len(turns) > 1,
        )
        if self._limits.extract_facts and len(turns) > 1:
            self.facts_waiting()
        delivered = await self._store.mark_delivered(job.id, message_ids)
        metrics.record_job("delivered")
        await self.groups.after_delivery(delivered, tuple(message_ids))
        await self._count_activity()
        return delivered

    async def _count_activity(self) -> None:
        """Consolidation triggered by activity: every `consolidate_every` exchanges, in the
        background (the answer is delivered already; a failure waits for the next trigger)."""
        every = self._limits.consolidate_every
        if every <= 0:
            return
        if await self.group_store.bump_counter("exchanges") % every:
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

    async def job_status(
        self, *, job_id: str = "", idempotency_key: str = "", delivered_message_id: str = ""
    ) -> Job:
        if job_id:
            return await self._job(job_id)
        if delivered_message_id:
            found = await self._store.get_job_by_delivered_message(delivered_message_id)
            if found is None:
                raise NotFound(
                    f"no answer was delivered as message {delivered_message_id!r}",
                    reason="JOB_NOT_FOUND",
                )
            return found
        if not idempotency_key:
            raise InvalidArgument(
                "job_id", "give a job_id, an idempotency_key or a delivered_message_id"
            )
        job = await self._store.get_job_by_key(idempotency_key)
        if job is None:
            raise NotFound(
                f"no job for idempotency key {quoted(idempotency_key)}", reason="JOB_NOT_FOUND"
            )
        return job

    async def job_context(self, job: Job, actor: Actor) -> JobContext | None:
        """What informed the job's answer, for its own user or a superuser; else None."""
        user = await self.user(actor)
        if job.user_id != user.id and not user.superuser:
            return None
        return await load_context(self._store.engine, job.id)

    # ---- personalities ----

    async def import_personality(
        self, seed: PersonalitySeed, *, actor: Actor | None
    ) -> tuple[Personality, bool]:
        owner = None if actor is None else (await self._store.upsert_user(actor)).id
        return await self._store.import_personality(seed, owner_user_id=owner)

    async def get_personality(self, name: str, actor: Actor | None) -> Personality:
        user = None if actor is None else await self._store.upsert_user(actor)
        return await self._usable_personality(name, user)

    async def list_personalities(
        self,
        actor: Actor | None,
        page: PageRequest | None = None,
        *,
        owned_by: str | None = None,
    ) -> Page[Personality]:
        """One page (by slug) of the personalities `actor` may use; `owned_by` keeps only
        those of that owner ('' for the operator's, which have none)."""
        page = page or PageRequest()
        page_size(page.size)  # refuse a bad size before any work
        user = None if actor is None else await self.user(actor)
        usable = [
            p
            for p in await self._store.list_personalities()
            if _may_use(p, user) and (owned_by is None or (p.owner_user_id or "") == owned_by)
        ]
        return paginate(usable, page, key=lambda p: p.slug)

    async def find_personality(self, name: str) -> Personality | None:
        return await self._store.find_personality(name)

    async def personality_for(self, name: str, user: User) -> Personality:
        """The personality `name` as `user` may use it, else NOT_FOUND."""
        return await self._usable_personality(name, user)

    async def personality_by_id(self, personality_id: str) -> Personality | None:
        return await self._store.get_personality(personality_id)

    # ---- helpers ----

    def _validate_generate(self, command: GenerateCommand, *, scheduled: bool = False) -> None:
        _require_id("actor.user_id", command.actor.platform_user_id)
        _require_id("idempotency_key", command.idempotency_key)
        _require_id("location.channel_id", command.location.conversation_id)
        if not command.personality.strip():
            raise InvalidArgument("personality", "name the personality to talk to")
        if not scheduled and not command.content.strip() and not command.attachments:
            raise InvalidArgument("content", "the message is empty")
        if len(command.content) > self._limits.max_message_chars:
            raise InvalidArgument(
                "content",
                f"the message is {len(command.content)} characters; "
                f"the limit is {self._limits.max_message_chars}",
            )

    async def _usable_personality(self, name: str, user: User | None) -> Personality:
        personality = await self._store.find_personality(name)
        if personality is None or not _may_use(personality, user):
            raise NotFound(f"no personality named {quoted(name)}", reason="PERSONALITY_NOT_FOUND")
        return personality

    async def _store_personality(self, personality_id: str) -> Personality:
        personality = await self._store.get_personality(personality_id)
        if personality is None:
            raise NotFound(
                f"personality {personality_id} no longer exists", reason="PERSONALITY_NOT_FOUND"
            )
        return personality

    async def effective_config(self, personality: Personality, user: User | None) -> ResolvedConfig:
        """User override → personality default → global default."""
        default = None
        if personality.default_llm_config_id:
            default = await self._store.get_llm_config(personality.default_llm_config_id)
        override = None
        if user is not None:
            override = await self._admin_store.get_override(user.id, personality.id)
        return resolve_llm_config(
            user_override=override,
            personality_default=default,
            global_default=self._limits.default_config,
        )

    async def resolved_settings(
        self, user: User | None, personality: Personality | None, channel_id: str
    ) -> dict[str, settings_cascade.ResolvedSetting]:
        levels = await self._admin_store.setting_levels(
            user_id=user.id if user else "",
            personality_id=personality.id if personality else "",
            channel_id=channel_id,
        )
        return settings_cascade.resolve(
            levels, {MAX_HISTORY_MESSAGES: self._limits.max_history_messages}
        )

    async def user(self, actor: Actor) -> User:
        """The actor's user, created on first sight; superuser when the operator listed them.

        Every use-case acting for a human comes through here: no actor, no user.
        """
        _require_id("actor.user_id", actor.platform_user_id)
        return await self._store.upsert_user(
            actor, superuser=actor.platform_user_id in self._limits.superusers
        )

    async def _check_denylist(self, user: User, where: Location, personality: Personality) -> None:
        """Operators are never filtered; a mute is refused like a block, with its own reason."""
        if user.superuser:
            return
        entries = await self._admin_store.matching_deny(
            user_id=user.platform_user_id,
            guild_id=where.guild_id,
            channel_id=where.channel_id,
            personality_slug=personality.slug,
        )
        if any(e.mode is DenyMode.BLOCK for e in entries):
            raise PermissionDenied("you may not use this bot here", reason="DENYLISTED")
        if entries:
            raise PermissionDenied("muted here", reason="MUTED")

    async def _check_nsfw(self, user: User, personality: Personality, where: Location) -> User:
        """Age-restricted channels verify the user once; NSFW personalities need both."""
        if where.nsfw_channel and not user.nsfw_verified:
            user = await self._admin_store.update_user(user.id, nsfw_verified=True)
            log.info("user.nsfw_verified", user_id=user.id)
        if personality.nsfw:
            if where.guild_id and not where.nsfw_channel:
                raise PermissionDenied(
                    f"{personality.display_name} answers only in age-restricted channels",
                    reason="NSFW_CHANNEL_REQUIRED",
                )
            if not user.nsfw_verified:
                raise PermissionDenied(
                    f"{personality.display_name} is NSFW: use the bot once in an "
                    "age-restricted channel to verify your age",
                    reason="NSFW_VERIFICATION_REQUIRED",
                )
        return user

    async def _take_rate_tokens(self, user: User, where: Location) -> None:
        if user.superuser:
            return
        buckets = []
        if self._limits.user_bucket is not None:
            buckets.append(Bucket(f"user:{user.id}", self._limits.user_bucket, "you"))
        if self._limits.channel_bucket is not None and where.channel_id:
            buckets.append(
                Bucket(f"channel:{where.channel_id}", self._limits.channel_bucket, "this channel")
            )
        if buckets:
            await self._limiter.take(buckets)

    async def _prepare(
        self, user: User, personality: Personality, where: Location, *, new: bool
    ) -> _Prepared:
        config = await self.effective_config(personality, user)
        if self._limits.demo_all_free and not config.config.free_use:
            config = replace(config, config=replace(config.config, free_use=True))
        request_type = "chat"
        if config.config.free_use and new:
            keys = await self._keyvault.list_keys(user.id)
            if all(k.provider != config.config.provider for k in keys):
                await self._admit_guest(user, config.config)
                request_type = "guest"
        persona = await self._admin_store.effective_persona(user.id, personality.id)
        return _Prepared(
            config=config,
            settings=await self.resolved_settings(user, personality, where.conversation_id),
            persona=persona,
            request_type=request_type,
        )

    async def _admit_guest(self, user: User, config: LlmConfig) -> None:
        """A user without a key on a free model: within the guests' fair share, or refused."""
        limits = self._limits
        if not limits.guest_mode:
            raise FailedPrecondition(
                f"no API key for {config.provider}; add one with /wallet set {config.provider}",
                reason="NO_API_KEY",
            )
        if not user.superuser and limits.guest_user_bucket is not None:
            await self._limiter.take([Bucket(f"guest:{user.id}", limits.guest_user_bucket, "you")])
        day = datetime.now(UTC).date().isoformat()
        if not await self._quota.use(f"guest:{day}", limits.guest_daily_budget):
            raise ResourceExhausted(
                "the free models' daily budget is spent; add your own key with /wallet set "
                f"{config.provider}, or try again tomorrow",
                retry_after_seconds=_seconds_to_midnight(),
                reason="GUEST_BUDGET_EXHAUSTED",
            )

    async def _keep_alive(self, job_id: str) -> None:
        """Renews the job's lease while it runs, so duplicates do not take it over."""
        interval = self._limits.job_lease_seconds / 4
        while True:
            await asyncio.sleep(interval)
            try:
                await self._store.heartbeat(job_id)
            except Exception:  # a missed beat is not fatal; the next one may succeed
                log.warning("job.heartbeat_failed", job_id=job_id, exc_info=True)

    async def _job(self, job_id: str) -> Job:
        try:
            uuid.UUID(job_id)
        except ValueError:
            raise InvalidArgument("job_id", f"{quoted(job_id)} is not a job id") from None
        job = await self._store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", reason="JOB_NOT_FOUND")
        return job


def _seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
    return (midnight - now).total_seconds()


def _may_use(personality: Personality, user: User | None) -> bool:
    """Private personalities are usable by their owner and superusers only."""
    if personality.public or user is None:
        return personality.public
    return user.superuser or personality.owner_user_id == user.id


def _require_id(field: str, value: str) -> None:
    if not value.strip():
        raise InvalidArgument(field, f"{field} is required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(field, f"{field} is longer than {MAX_ID_CHARS} characters")


def _job_error(job: Job) -> TzurotError:
    error = job.error
    if error is None:
        return FailedPrecondition(f"job {job.id} failed", reason="JOB_FAILED")
    return error_from_code(error.code, error.message, reason=error.reason)


def _footer(finished: ReplyFinished, prepared: _Prepared) -> str:
    """The answering model, when the model_footer setting is on."""
    if not prepared.settings[MODEL_FOOTER].value:
        return ""
    return f"{finished.usage.provider}/{finished.usage.model}"
