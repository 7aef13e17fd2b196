"""Gateway's use-cases: generate, deliver, job status, personalities and the wallet.

Plain async code over the store and the ports; the gRPC servicer only converts.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

import structlog
from pydantic import SecretStr

from tzurot.gateway.domain import (
    Actor,
    GenerateCommand,
    GenerateEvent,
    GenerationFinished,
    HistoryTurn,
    Job,
    JobAccepted,
    JobError,
    JobStatus,
    LlmConfig,
    Personality,
    ReplyChunk,
    ReplyFinished,
    ReplyRequest,
    ResolvedConfig,
    User,
    WalletKey,
)
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.ports import Inference, KeyVault, Memory
from tzurot.gateway.resolve import resolve_llm_config
from tzurot.gateway.store import GatewayStore, NewJob
from tzurot.runtime import metrics
from tzurot.runtime.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TzurotError,
    error_from_code,
)

log = structlog.get_logger(__name__)

MAX_ID_CHARS = 200
MAX_API_KEY_CHARS = 4096
_DUPLICATE_POLL_SECONDS = 0.1
_CLIENT_CANCELLED = JobError("CANCELLED", "CLIENT_CANCELLED", "the client cancelled")
_UNEXPECTED = JobError("INTERNAL", "INTERNAL", "internal error")


@dataclass(frozen=True)
class GatewayLimits:
    max_message_chars: int
    max_history_messages: int
    duplicate_wait_seconds: float
    default_config: LlmConfig


class Gateway:
    """Orchestrates one message from a client to inference and back, and the admin tasks."""

    def __init__(
        self,
        *,
        store: GatewayStore,
        inference: Inference,
        memory: Memory,
        keyvault: KeyVault,
        limits: GatewayLimits,
    ) -> None:
        self._store = store
        self._inference = inference
        self._memory = memory
        self._keyvault = keyvault
        self._limits = limits

    # ---- conversation ----

    async def generate(self, command: GenerateCommand) -> AsyncGenerator[GenerateEvent, None]:
        """Streams JobAccepted, the answer's chunks in order, then GenerationFinished.

        A duplicate idempotency key replays the existing job instead of generating again.
        """
        self._validate_generate(command)
        user = await self._store.upsert_user(command.actor)
        personality = await self._usable_personality(command.personality, user)
        job, claimed = await self._store.claim_job(
            NewJob(
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
        )
        if not claimed:
            if (job.user_id, job.personality_id) != (user.id, personality.id):
                # Never replay someone else's answer: the key names another request.
                raise AlreadyExists(
                    "this idempotency key was already used for another request",
                    reason="IDEMPOTENCY_KEY_REUSED",
                )
            async with contextlib.aclosing(self._replay(job, personality)) as replayed:
                async for event in replayed:
                    yield event
            return
        # aclosing: when our consumer closes this stream, the inner ones must close now (and
        # mark the job), not whenever the garbage collector finalizes them.
        async with contextlib.aclosing(self._run_job(job, user, personality, command)) as events:
            async for event in events:
                yield event

    async def _run_job(
        self, job: Job, user: User, personality: Personality, command: GenerateCommand
    ) -> AsyncGenerator[GenerateEvent, None]:
        """Runs a claimed job. Whatever stops it early, it ends `failed` with the reason."""
        try:
            yield JobAccepted(job_id=job.id, personality=personality, replayed=False)
            await self._store.start_attempt(job.id)
            request = ReplyRequest(
                job_id=job.id,
                user_id=user.id,
                actor=command.actor,
                location=command.location,
                personality=personality,
                config=await self._effective_config(personality),
                content=command.content,
                references=command.references,
                attachments=command.attachments,
                timezone=user.timezone,
                max_history_messages=self._limits.max_history_messages,
                include_reasoning=command.include_reasoning,
            )
            finished: ReplyFinished | None = None
            async with contextlib.aclosing(self._inference.generate_reply(request)) as replies:
                async for event in replies:
                    if isinstance(event, ReplyChunk):
                        yield event
                    else:
                        finished = event
            if finished is None:
                raise FailedPrecondition(
                    "inference ended without a final answer", reason="NO_ANSWER"
                )
            await self._store.finish_job(job.id, finished.content, finished.usage, "chat")
        except TzurotError as err:
            await self._fail(job.id, JobError(err.code.name, err.reason, err.message))
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # The client went away: nothing was delivered, so no turn is stored.
            await self._fail(job.id, _CLIENT_CANCELLED)
            raise
        except Exception:
            # A bug, not an outcome: the job must not stay `running` for duplicates to wait on.
            log.exception("job.unexpected_error", job_id=job.id)
            await self._fail(job.id, _UNEXPECTED)
            raise
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
        )

    async def _fail(self, job_id: str, error: JobError) -> None:
        """Marks the job failed; shielded, so a cancelled stream still records why."""
        await asyncio.shield(self._store.fail_job(job_id, error))
        metrics.record_job("failed", error.reason)
        log.info("job.failed", job_id=job_id, code=error.code, reason=error.reason)

    async def _replay(
        self, job: Job, personality: Personality
    ) -> AsyncGenerator[GenerateEvent, None]:
        """A duplicate request: wait for the original job, then repeat its outcome."""
        deadline = asyncio.get_running_loop().time() + self._limits.duplicate_wait_seconds
        while not job.status.terminal:
            if asyncio.get_running_loop().time() > deadline:
                raise FailedPrecondition(
                    f"job {job.id} for this message is still {job.status.value}",
                    reason="JOB_IN_PROGRESS",
                )
            await asyncio.sleep(_DUPLICATE_POLL_SECONDS)
            refreshed = await self._store.get_job(job.id)
            assert refreshed is not None  # jobs are never deleted while a key can repeat
            job = refreshed
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
        await self._memory.store_exchange(
            job_id=job.id,
            conversation_id=job.channel_id,
            personality_id=job.personality_id,
            user_id=job.user_id,
            turns=[
                HistoryTurn(
                    "user",
                    job.author_id,
                    job.author_name,
                    job.request_content,
                    job.request_message_ids,
                ),
                HistoryTurn(
                    "assistant",
                    personality.slug,
                    personality.display_name,
                    job.content,
                    tuple(message_ids),
                ),
            ],
        )
        delivered = await self._store.mark_delivered(job.id, message_ids)
        metrics.record_job("delivered")
        return delivered

    async def job_status(self, *, job_id: str = "", idempotency_key: str = "") -> Job:
        if job_id:
            return await self._job(job_id)
        if not idempotency_key:
            raise InvalidArgument("job_id", "give a job_id or an idempotency_key")
        job = await self._store.get_job_by_key(idempotency_key)
        if job is None:
            raise NotFound(
                f"no job for idempotency key {idempotency_key!r}", reason="JOB_NOT_FOUND"
            )
        return job

    # ---- personalities ----

    async def import_personality(
        self, seed: PersonalitySeed, *, actor: Actor | None
    ) -> tuple[Personality, bool]:
        owner = None if actor is None else (await self._store.upsert_user(actor)).id
        return await self._store.import_personality(seed, owner_user_id=owner)

    async def get_personality(self, name: str, actor: Actor | None) -> Personality:
        user = None if actor is None else await self._store.upsert_user(actor)
        return await self._usable_personality(name, user)

    async def list_personalities(self, actor: Actor | None) -> list[Personality]:
        user = None if actor is None else await self._store.upsert_user(actor)
        return [p for p in await self._store.list_personalities() if _may_use(p, user)]

    # ---- wallet ----

    async def set_wallet_key(
        self, actor: Actor, provider: str, api_key: SecretStr, *, skip_validation: bool
    ) -> WalletKey:
        _require_id("provider", provider)
        key = api_key.get_secret_value()
        if not key.strip():
            raise InvalidArgument("api_key", "the API key is empty")
        if len(key) > MAX_API_KEY_CHARS:
            raise InvalidArgument("api_key", f"the API key is longer than {MAX_API_KEY_CHARS}")
        user = await self._store.upsert_user(actor)
        if skip_validation:
            if not user.superuser:
                raise PermissionDenied("only superusers may store a key without validation")
        else:
            await self._inference.validate_key(provider, api_key)
        return await self._keyvault.put_key(user.id, provider, api_key)

    async def list_wallet_keys(self, actor: Actor) -> list[WalletKey]:
        user = await self._store.upsert_user(actor)
        return await self._keyvault.list_keys(user.id)

    async def remove_wallet_key(self, actor: Actor, provider: str) -> None:
        _require_id("provider", provider)
        user = await self._store.upsert_user(actor)
        if not await self._keyvault.delete_key(user.id, provider):
            raise NotFound(f"no {provider} key stored for you", reason="NO_API_KEY")

    # ---- helpers ----

    def _validate_generate(self, command: GenerateCommand) -> None:
        _require_id("actor.user_id", command.actor.platform_user_id)
        _require_id("idempotency_key", command.idempotency_key)
        _require_id("location.channel_id", command.location.conversation_id)
        if not command.personality.strip():
            raise InvalidArgument("personality", "name the personality to talk to")
        if not command.content.strip() and not command.attachments:
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
            raise NotFound(f"no personality named {name!r}", reason="PERSONALITY_NOT_FOUND")
        return personality

    async def _store_personality(self, personality_id: str) -> Personality:
        personality = await self._store.get_personality(personality_id)
        if personality is None:
            raise NotFound(
                f"personality {personality_id} no longer exists", reason="PERSONALITY_NOT_FOUND"
            )
        return personality

    async def _effective_config(self, personality: Personality) -> ResolvedConfig:
        default = None
        if personality.default_llm_config_id:
            default = await self._store.get_llm_config(personality.default_llm_config_id)
        return resolve_llm_config(
            user_override=None,
            personality_default=default,
            global_default=self._limits.default_config,
        )

    async def _job(self, job_id: str) -> Job:
        try:
            uuid.UUID(job_id)
        except ValueError:
            raise InvalidArgument("job_id", f"{job_id!r} is not a job id") from None
        job = await self._store.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", reason="JOB_NOT_FOUND")
        return job


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
