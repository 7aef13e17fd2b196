"""Gateway's Postgres store (schema `core`): users, personalities, configs, jobs, usage."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway import tables as t
from tzurot.gateway.cache import CATALOG_TTL_SECONDS, TtlCache
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


def _upsert_user_statement() -> sa.CompoundSelect[Any]:
    """INSERT … ON CONFLICT that updates only on a change; unchanged, it reads the row.

    Built once (bind parameters), so no per-call construction or cache-key work.
    """
    users = t.users.c
    stmt = insert(t.users).values(
        platform_user_id=sa.bindparam("platform_user_id", type_=sa.String),
        display_name=sa.bindparam("display_name", type_=sa.String),
        superuser=sa.bindparam("superuser", type_=sa.Boolean),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[users.platform_user_id],
        set_={
            "display_name": stmt.excluded.display_name,
            "superuser": users.superuser | stmt.excluded.superuser,
        },
        where=sa.or_(
            users.display_name.is_distinct_from(stmt.excluded.display_name),
            sa.and_(stmt.excluded.superuser, sa.not_(users.superuser)),
        ),
    )
    # Unchanged (the usual case): ON CONFLICT … WHERE returns nothing, so the same
    # statement also reads the row as it stands.
    changed = stmt.returning(*t.users.c).cte("changed")
    unchanged = sa.select(t.users).where(
        users.platform_user_id == sa.bindparam("platform_user_id"),
        ~sa.exists(sa.select(changed.c.id)),
    )
    return sa.union_all(sa.select(changed), unchanged)


_UPSERT_USER = _upsert_user_statement()
_USER_BY_PLATFORM_ID = sa.select(t.users).where(
    t.users.c.platform_user_id == sa.bindparam("platform_user_id")
)


def _claim_statement(*, start: bool) -> sa.Insert:
    """claim_job's statement, built once per `start` (bind parameters named as NewJob's)."""
    jobs = t.jobs.c
    started: dict[str, Any] = {}
    if start:
        started = {
            "status": JobStatus.RUNNING.value,
            "attempts": jobs.attempts + 1,
            "started_at": sa.func.coalesce(jobs.started_at, sa.func.now()),
        }
    lease = sa.bindparam("lease_seconds", type_=sa.Float)
    stale = sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, 0, 0, 0, lease)
    first: dict[str, Any] = {"status": JobStatus.QUEUED.value}
    if start:
        first = {"status": JobStatus.RUNNING.value, "attempts": 1, "started_at": sa.func.now()}
    columns = (
        "idempotency_key",
        "user_id",
        "personality_id",
        "guild_id",
        "channel_id",
        "request_content",
        "request_message_ids",
        "author_id",
        "author_name",
    )
    insert_stmt = insert(t.jobs).values(
        **{name: sa.bindparam(name, type_=t.jobs.c[name].type) for name in columns},
        heartbeat_at=sa.func.clock_timestamp(),
        **first,
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
    return insert_stmt.on_conflict_do_update(
        index_elements=[jobs.idempotency_key],
        set_={
            "status": JobStatus.QUEUED.value,
            "error_code": None,
            "error_reason": None,
            "error_message": None,
            "content": "",
            "finished_at": None,
            "heartbeat_at": sa.func.clock_timestamp(),
            **started,
        },
        where=reclaimable,
    ).returning(*t.jobs.c)


_CLAIM = _claim_statement(start=False)
_CLAIM_AND_START = _claim_statement(start=True)
_JOB_BY_KEY = sa.select(t.jobs).where(t.jobs.c.idempotency_key == sa.bindparam("idempotency_key"))


CONTEXT_COLUMNS = ("user_content", "user_attachments", "prompt_report", "reasoning")
"""What a finished reply leaves on its job for delivery and Inspect (job_context.py)."""


def _finish_job_statement() -> sa.Select[Any]:
    """UPDATE the job to streamed and INSERT its usage row from what the UPDATE returned."""
    jobs = t.jobs.c
    done = (
        sa.update(t.jobs)
        .where(jobs.id == sa.bindparam("job_id", type_=jobs.id.type))
        .values(
            status=JobStatus.STREAMED.value,
            content=sa.bindparam("v_content", type_=sa.Text),
            provider=sa.bindparam("v_provider", type_=sa.Text),
            model=sa.bindparam("v_model", type_=sa.Text),
            input_tokens=sa.bindparam("v_input_tokens", type_=sa.Integer),
            output_tokens=sa.bindparam("v_output_tokens", type_=sa.Integer),
            finished_at=sa.func.now(),
            **{
                name: sa.bindparam(f"v_{name}", type_=getattr(jobs, name).type)
                for name in CONTEXT_COLUMNS
            },
        )
        .returning(*t.jobs.c)
        .cte("done")
    )
    logged = (
        sa.insert(t.usage_log)
        .from_select(
            [
                "user_id",
                "job_id",
                "provider",
                "model",
                "input_tokens",
                "output_tokens",
                "request_type",
            ],
            sa.select(
                done.c.user_id,
                done.c.id,
                done.c.provider,
                done.c.model,
                done.c.input_tokens,
                done.c.output_tokens,
                sa.bindparam("v_request_type", type_=sa.Text),
            ),
        )
        .cte("logged")
    )
    return sa.select(done).add_cte(logged)


_FINISH_JOB = _finish_job_statement()


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

    def __init__(self, engine: AsyncEngine, *, catalog_ttl: float = CATALOG_TTL_SECONDS) -> None:
        self._engine = engine
        self._autocommit = autocommit(engine)  # single statements: no BEGIN/COMMIT round trips
        # Personalities (by name and id) and LLM configs (by id). Every write to them in this
        # process clears it (AdminStore shares it); other replicas' writes show within the TTL.
        self.catalog: TtlCache[Personality | LlmConfig] = TtlCache(catalog_ttl)

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # ---- users ----

    async def upsert_user(self, actor: Actor, *, superuser: bool = False) -> User:
        """The actor's user, created on first sight; `superuser` grants (never revokes) it."""
        params = {
            "platform_user_id": actor.platform_user_id,
            "display_name": actor.display_name,
            "superuser": superuser,
        }
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            row = (await conn.execute(_UPSERT_USER, params)).one_or_none()
            if row is None:  # created by a concurrent request after the upsert began
                row = (await conn.execute(_USER_BY_PLATFORM_ID, params)).one()
        return user_from_row(row._mapping)

    # ---- personalities ----

    async def find_personality(self, name: str) -> Personality | None:
        """By slug, display name or alias, case-insensitively, in that order of preference."""
        key = normalize_alias(name)
        cached = self.catalog.get(("name", key))
        if isinstance(cached, Personality):
            return cached
        generation = self.catalog.generation
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
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        personality = personality_from_row(row._mapping)
        self.catalog.put(("name", key), personality, generation)
        self.catalog.put(("personality", personality.id), personality, generation)
        return personality

    async def get_personality(self, personality_id: str) -> Personality | None:
        cached = self.catalog.get(("personality", personality_id))
        if isinstance(cached, Personality):
            return cached
        generation = self.catalog.generation
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.id == personality_id)
                )
            ).one_or_none()
        if row is None:
            return None
        personality = personality_from_row(row._mapping)
        self.catalog.put(("personality", personality_id), personality, generation)
        return personality

    async def list_personalities(self) -> list[Personality]:
        stmt = sa.select(*PERSONALITY_COLUMNS).order_by(t.personalities.c.slug)
        async with self._autocommit.connect() as conn:
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
        self.catalog.clear()
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
        cached = self.catalog.get(("config", config_id))
        if isinstance(cached, LlmConfig):
            return cached
        generation = self.catalog.generation
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(sa.select(t.llm_configs).where(t.llm_configs.c.id == config_id))
            ).one_or_none()
        if row is None:
            return None
        config = llm_config_from_row(row._mapping)
        self.catalog.put(("config", config_id), config, generation)
        return config

    # ---- jobs ----

    async def claim_job(
        self, new: NewJob, *, lease_seconds: float = 90.0, start: bool = False
    ) -> tuple[Job, bool]:
        """Inserts the job for an idempotency key, or returns the existing one (claimed=False).

        An existing job of the same user and personality is claimed again (a new attempt) when
        it failed for a retryable reason (RETRYABLE_CODES), or when it is queued or running
        but its heartbeat is older than `lease_seconds` (the gateway running it died). One
        statement, so of several concurrent duplicates exactly one wins the claim. With
        `start`, a claimed job is also started (as `start_attempt`) by the same statement.
        """
        params = {
            "idempotency_key": new.idempotency_key,
            "user_id": new.user_id,
            "personality_id": new.personality_id,
            "guild_id": new.guild_id,
            "channel_id": new.channel_id,
            "request_content": new.request_content,
            "request_message_ids": list(new.request_message_ids),
            "author_id": new.author_id,
            "author_name": new.author_name,
            "lease_seconds": lease_seconds,
        }
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            row = (await conn.execute(_CLAIM_AND_START if start else _CLAIM, params)).one_or_none()
            if row is not None:
                return _job(row._mapping), True
            row = (await conn.execute(_JOB_BY_KEY, params)).one()
        return _job(row._mapping), False

    async def heartbeat(self, job_id: str) -> None:
        """The job's runner is alive: renew its lease."""
        async with self._autocommit.connect() as conn:
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
        """Marks the job streamed with its answer and records usage, in one statement.

        `context`: the job's context columns (job_context.context_columns).
        """
        params = {
            "job_id": job_id,
            "v_content": content,
            "v_provider": usage.provider,
            "v_model": usage.model,
            "v_input_tokens": usage.input_tokens,
            "v_output_tokens": usage.output_tokens,
            "v_request_type": request_type,
            **{f"v_{name}": None for name in CONTEXT_COLUMNS},
            **{f"v_{name}": value for name, value in (context or {}).items()},
        }
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            return _job((await conn.execute(_FINISH_JOB, params)).one()._mapping)

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
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(sa.select(t.jobs).where(where))).one_or_none()
        return None if row is None else _job(row._mapping)

    async def _update_job(self, job_id: str, **values: Any) -> Job:
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
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
