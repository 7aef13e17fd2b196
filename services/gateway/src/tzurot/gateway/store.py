"""Gateway's Postgres store (schema `core`): users, personalities, configs, jobs, usage."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.domain import (
    Actor,
    CharacterFields,
    Job,
    JobError,
    JobStatus,
    LlmConfig,
    Personality,
    Usage,
    User,
)
from tzurot.gateway.personalities import PersonalitySeed, normalize_alias
from tzurot.runtime.errors import AlreadyExists

# array_agg over no rows is NULL, which _personality reads as no aliases.
_ALIASES = (
    sa.select(sa.func.array_agg(t.personality_aliases.c.display))
    .where(t.personality_aliases.c.personality_id == t.personalities.c.id)
    .scalar_subquery()
    .label("aliases")
)
PERSONALITY_COLUMNS = (*t.personalities.c, _ALIASES)
_IMPORT_LOCK = "tzurot.core.personality_import"
# A job that failed with one of these may be tried again under the same idempotency key.
RETRYABLE_CODES = ("UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED")


@dataclass(frozen=True)
class NewJob:
    idempotency_key: str
    user_id: str
    personality_id: str
    guild_id: str
    channel_id: str
    request_content: str
    request_message_ids: Sequence[str]
    author_id: str
    author_name: str


class GatewayStore:
    """All of gateway's SQL. Methods are small transactions; none holds a connection open."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # ---- users ----

    async def upsert_user(self, actor: Actor, *, superuser: bool = False) -> User:
        """The actor's user, created on first sight; `superuser` grants (never revokes) it."""
        stmt = insert(t.users).values(
            platform_user_id=actor.platform_user_id,
            display_name=actor.display_name,
            superuser=superuser,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.users.c.platform_user_id],
            set_={
                "display_name": stmt.excluded.display_name,
                "superuser": t.users.c.superuser | stmt.excluded.superuser,
            },
            where=sa.or_(
                t.users.c.display_name.is_distinct_from(stmt.excluded.display_name),
                sa.and_(stmt.excluded.superuser, sa.not_(t.users.c.superuser)),
            ),
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt.returning(*t.users.c))).one_or_none()
            if row is None:  # unchanged row: ON CONFLICT ... WHERE returned nothing
                row = (
                    await conn.execute(
                        sa.select(t.users).where(
                            t.users.c.platform_user_id == actor.platform_user_id
                        )
                    )
                ).one()
        return user_from_row(row._mapping)

    # ---- personalities ----

    async def find_personality(self, name: str) -> Personality | None:
        """By slug, display name or alias, case-insensitively, in that order of preference."""
        key = normalize_alias(name)
        alias_match = sa.exists().where(
            t.personality_aliases.c.personality_id == t.personalities.c.id,
            t.personality_aliases.c.alias == key,
        )
        rank = sa.case(
            (t.personalities.c.slug == key, 0),
            (sa.func.lower(t.personalities.c.display_name) == key, 1),
            else_=2,
        )
        stmt = (
            sa.select(*PERSONALITY_COLUMNS)
            .where(
                sa.or_(
                    t.personalities.c.slug == key,
                    sa.func.lower(t.personalities.c.display_name) == key,
                    alias_match,
                )
            )
            .order_by(rank, t.personalities.c.created_at)
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else personality_from_row(row._mapping)

    async def get_personality(self, personality_id: str) -> Personality | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.id == personality_id)
                )
            ).one_or_none()
        return None if row is None else personality_from_row(row._mapping)

    async def list_personalities(self) -> list[Personality]:
        stmt = sa.select(*PERSONALITY_COLUMNS).order_by(t.personalities.c.slug)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [personality_from_row(row._mapping) for row in rows]

    async def import_personality(
        self, seed: PersonalitySeed, *, owner_user_id: str | None
    ) -> tuple[Personality, bool]:
        """Creates or updates a personality (by slug) with its aliases and default config."""
        slug = seed.effective_slug
        async with self._engine.begin() as conn:
            # Imports are rare and touch several rows whose uniqueness is checked in code (the
            # default config, alias clashes): one at a time, or two would both pass the checks.
            await conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(_IMPORT_LOCK)))
            )
            config_id = await self._upsert_default_config(conn, slug, seed)
            values: dict[str, Any] = {
                "slug": slug,
                "display_name": seed.name,
                "avatar_url": seed.avatar_url,
                "system_prompt": seed.system_prompt,
                "character": seed.character.model_dump(),
                "default_llm_config_id": config_id,
                "error_message": seed.error_message,
                "birthday": seed.birthday,
                "owner_user_id": owner_user_id,
                "public": seed.public,
                "nsfw": seed.nsfw,
            }
            insert_stmt = insert(t.personalities).values(**values)
            excluded = insert_stmt.excluded
            update = {k: excluded[k] for k in values if k not in ("slug", "owner_user_id")}
            stmt = insert_stmt.on_conflict_do_update(
                index_elements=[t.personalities.c.slug],
                set_={**update, "updated_at": sa.func.now()},
            ).returning(t.personalities.c.id, sa.literal_column("xmax = 0").label("created"))
            row = (await conn.execute(stmt)).one()
            await self._replace_aliases(conn, row.id, seed.aliases)
            personality = await self._personality_by_id(conn, row.id)
        return personality, bool(row.created)

    async def _upsert_default_config(
        self, conn: AsyncConnection, slug: str, seed: PersonalitySeed
    ) -> str | None:
        if seed.llm is None:
            return None
        name = f"{slug} default"
        existing = await conn.scalar(
            sa.select(t.llm_configs.c.id).where(
                t.llm_configs.c.owner_user_id.is_(None),
                sa.func.lower(t.llm_configs.c.name) == name,
            )
        )
        values = {
            "name": name,
            "provider": seed.llm.provider,
            "model": seed.llm.model,
            "free_use": seed.llm.free_use,
            "context_window": seed.llm.context_window,
            "max_referenced_messages": seed.llm.max_referenced_messages,
            "advanced_parameters": seed.llm.advanced_parameters,
            "description": f"Default model of {seed.name}",
        }
        if existing is not None:
            await conn.execute(
                sa.update(t.llm_configs).where(t.llm_configs.c.id == existing).values(**values)
            )
            return str(existing)
        return str(
            await conn.scalar(
                sa.insert(t.llm_configs).values(**values).returning(t.llm_configs.c.id)
            )
        )

    async def _replace_aliases(
        self, conn: AsyncConnection, personality_id: str, aliases: Sequence[str]
    ) -> None:
        wanted = {normalize_alias(a): a.strip().lstrip("@") for a in aliases}
        clashes = (
            await conn.execute(
                sa.select(t.personality_aliases.c.alias, t.personalities.c.slug)
                .join(t.personalities)
                .where(
                    t.personality_aliases.c.alias.in_(list(wanted)),
                    t.personality_aliases.c.personality_id != personality_id,
                )
            )
        ).all()
        if clashes:
            alias, owner = clashes[0]
            raise AlreadyExists(f"alias {alias!r} already belongs to personality {owner!r}")
        await conn.execute(
            sa.delete(t.personality_aliases).where(
                t.personality_aliases.c.personality_id == personality_id
            )
        )
        if wanted:
            await conn.execute(
                sa.insert(t.personality_aliases),
                [
                    {"alias": key, "display": display, "personality_id": personality_id}
                    for key, display in wanted.items()
                ],
            )

    async def _personality_by_id(self, conn: AsyncConnection, personality_id: str) -> Personality:
        row = (
            await conn.execute(
                sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.id == personality_id)
            )
        ).one()
        return personality_from_row(row._mapping)

    # ---- LLM configs ----

    async def get_llm_config(self, config_id: str) -> LlmConfig | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(t.llm_configs).where(t.llm_configs.c.id == config_id))
            ).one_or_none()
        return None if row is None else llm_config_from_row(row._mapping)

    # ---- jobs ----

    async def claim_job(self, new: NewJob, *, lease_seconds: float = 90.0) -> tuple[Job, bool]:
        """Inserts the job for an idempotency key, or returns the existing one (claimed=False).

        An existing job of the same user and personality is claimed again (a new attempt) when
        it failed for a retryable reason (RETRYABLE_CODES), or when it is queued or running
        but its heartbeat is older than `lease_seconds` (the gateway running it died). One
        statement, so of several concurrent duplicates exactly one wins the claim.
        """
        jobs = t.jobs.c
        stale = sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)
        insert_stmt = insert(t.jobs).values(
            idempotency_key=new.idempotency_key,
            status=JobStatus.QUEUED.value,
            user_id=new.user_id,
            personality_id=new.personality_id,
            guild_id=new.guild_id,
            channel_id=new.channel_id,
            request_content=new.request_content,
            request_message_ids=list(new.request_message_ids),
            author_id=new.author_id,
            author_name=new.author_name,
            heartbeat_at=sa.func.clock_timestamp(),
        )
        reclaimable = sa.and_(
            jobs.user_id == insert_stmt.excluded.user_id,
            jobs.personality_id == insert_stmt.excluded.personality_id,
            sa.or_(
                sa.and_(
                    jobs.status == JobStatus.FAILED.value,
                    jobs.error_code.in_(RETRYABLE_CODES),
                ),
                sa.and_(
                    jobs.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
                    sa.func.coalesce(jobs.heartbeat_at, jobs.created_at) < stale,
                ),
            ),
        )
        stmt = insert_stmt.on_conflict_do_update(
            index_elements=[jobs.idempotency_key],
            set_={
                "status": JobStatus.QUEUED.value,
                "error_code": None,
                "error_reason": None,
                "error_message": None,
                "content": "",
                "finished_at": None,
                "heartbeat_at": sa.func.clock_timestamp(),
            },
            where=reclaimable,
        ).returning(*t.jobs.c)
        async with self._engine.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
            if row is not None:
                return _job(row._mapping), True
            row = (
                await conn.execute(
                    sa.select(t.jobs).where(jobs.idempotency_key == new.idempotency_key)
                )
            ).one()
        return _job(row._mapping), False

    async def heartbeat(self, job_id: str) -> None:
        """The job's runner is alive: renew its lease."""
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(t.jobs)
                .where(t.jobs.c.id == job_id, t.jobs.c.status == JobStatus.RUNNING.value)
                .values(heartbeat_at=sa.func.clock_timestamp())
            )

    async def get_job(self, job_id: str) -> Job | None:
        return await self._one_job(t.jobs.c.id == job_id)

    async def get_job_by_key(self, idempotency_key: str) -> Job | None:
        return await self._one_job(t.jobs.c.idempotency_key == idempotency_key)

    async def start_attempt(self, job_id: str) -> Job:
        return await self._update_job(
            job_id,
            status=JobStatus.RUNNING.value,
            attempts=t.jobs.c.attempts + 1,
            heartbeat_at=sa.func.clock_timestamp(),
            started_at=sa.func.coalesce(t.jobs.c.started_at, sa.func.now()),
        )

    async def finish_job(
        self,
        job_id: str,
        content: str,
        usage: Usage,
        request_type: str,
        context: Mapping[str, Any] | None = None,
    ) -> Job:
        """Marks the job streamed with its answer and records usage, in one transaction.

        `context`: the job's context columns (job_context.context_columns).
        """
        async with self._engine.begin() as conn:
            job = await self._update_job_in(
                conn,
                job_id,
                **(context or {}),
                status=JobStatus.STREAMED.value,
                content=content,
                provider=usage.provider,
                model=usage.model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                finished_at=sa.func.now(),
            )
            await conn.execute(
                sa.insert(t.usage_log).values(
                    user_id=job.user_id,
                    job_id=job_id,
                    provider=usage.provider,
                    model=usage.model,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    request_type=request_type,
                )
            )
        return job

    async def fail_job(self, job_id: str, error: JobError) -> Job:
        return await self._update_job(
            job_id,
            status=JobStatus.FAILED.value,
            error_code=error.code,
            error_reason=error.reason,
            error_message=error.message,
            finished_at=sa.func.now(),
        )

    async def mark_delivered(self, job_id: str, message_ids: Sequence[str]) -> Job:
        return await self._update_job(
            job_id,
            status=JobStatus.DELIVERED.value,
            delivered_message_ids=list(message_ids),
            delivered_at=sa.func.now(),
        )

    async def _one_job(self, where: sa.ColumnElement[bool]) -> Job | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(t.jobs).where(where))).one_or_none()
        return None if row is None else _job(row._mapping)

    async def _update_job(self, job_id: str, **values: Any) -> Job:
        async with self._engine.begin() as conn:
            return await self._update_job_in(conn, job_id, **values)

    @staticmethod
    async def _update_job_in(conn: AsyncConnection, job_id: str, **values: Any) -> Job:
        stmt = sa.update(t.jobs).where(t.jobs.c.id == job_id).values(**values).returning(*t.jobs.c)
        return _job((await conn.execute(stmt)).one()._mapping)


def user_from_row(row: sa.RowMapping) -> User:
    return User(
        id=str(row["id"]),
        platform_user_id=row["platform_user_id"],
        display_name=row["display_name"],
        timezone=row["timezone"],
        superuser=row["superuser"],
        nsfw_verified=row["nsfw_verified"],
        created_at=row["created_at"],
    )


def personality_from_row(row: sa.RowMapping) -> Personality:
    character = row["character"]
    if isinstance(
        character, str
    ):  # pragma: no cover - asyncpg decodes jsonb to str without a codec
        character = json.loads(character)
    return Personality(
        id=str(row["id"]),
        slug=row["slug"],
        display_name=row["display_name"],
        aliases=tuple(sorted(row["aliases"] or ())),
        avatar_url=row["avatar_url"],
        system_prompt=row["system_prompt"],
        character=CharacterFields(**character),
        default_llm_config_id=_opt_str(row["default_llm_config_id"]),
        error_message=row["error_message"],
        birthday=row["birthday"],
        owner_user_id=_opt_str(row["owner_user_id"]),
        public=row["public"],
        nsfw=row["nsfw"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        voice_id=row["voice_id"],
    )


def llm_config_from_row(row: sa.RowMapping) -> LlmConfig:
    return LlmConfig(
        id=str(row["id"]),
        name=row["name"],
        provider=row["provider"],
        model=row["model"],
        owner_user_id=_opt_str(row["owner_user_id"]),
        advanced_parameters=row["advanced_parameters"] or {},
        context_window=row["context_window"],
        max_referenced_messages=row["max_referenced_messages"],
        free_use=row["free_use"],
        description=row["description"],
    )


def _job(row: sa.RowMapping) -> Job:
    usage = None
    if row["provider"] is not None:
        usage = Usage(
            provider=row["provider"],
            model=row["model"] or "",
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
        )
    error = None
    if row["error_code"] is not None:
        error = JobError(
            code=row["error_code"],
            reason=row["error_reason"] or "",
            message=row["error_message"] or "",
        )
    return Job(
        id=str(row["id"]),
        idempotency_key=row["idempotency_key"],
        status=JobStatus(row["status"]),
        user_id=str(row["user_id"]),
        personality_id=str(row["personality_id"]),
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        request_content=row["request_content"],
        request_message_ids=tuple(row["request_message_ids"]),
        author_id=row["author_id"],
        author_name=row["author_name"],
        attempts=row["attempts"],
        content=row["content"],
        usage=usage,
        error=error,
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        delivered_at=row["delivered_at"],
        delivered_message_ids=tuple(row["delivered_message_ids"]),
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
