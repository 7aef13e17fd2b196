"""Jobs: one per request, claimed by idempotency key, leased while it runs, finished with
its answer and usage in one statement, then marked delivered."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.exc import NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.db import direct
from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import (
    GeneratedFile,
    GroupJob,
    Job,
    JobContext,
    JobError,
    JobStatus,
    Usage,
)
from tzurot.gateway.job_context import context_from_row
from tzurot.gateway.run_limit import (
    CUT_REASONS,
    DEFAULT_MAX_RUNS,
    JOB_RUN_LIMIT,
    RUN_LIMIT_CODE,
    run_limit_message,
)
from tzurot.gateway.store.base import SqlBase
from tzurot.gateway.store.rows import job_from_row as _job
from tzurot.runtime.errors import FailedPrecondition

log = structlog.get_logger(__name__)

# A job that failed with one of these may be tried again under the same idempotency key.
RETRYABLE_CODES = ("UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED")
# A scheduled turn's job key: this prefix and its bot event's id (groups.TURN_KEY_PREFIX;
# groups imports the store, not the other way).
TURN_KEY_PREFIX = "turn:"
"""A scheduled turn's job key (free will, a chain reply): `turn:<event id>`."""
_TURN_KEY_PATTERN = f"^{TURN_KEY_PREFIX}[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}$"
FOLLOW_UP_HOLD_SECONDS = 20.0
"""How long a delivery's group follow-up is its delivering gateway's before a sweep may run
it (the gateway passes its job lease)."""


def _at_run_limit() -> sa.ColumnElement[bool]:
    """The job ran as often as it may (run_limit.py; `max_runs`, bound by the caller)."""
    return t.jobs.c.attempts >= sa.bindparam("max_runs", type_=sa.Integer)


def _run_limit_values(
    code: sa.ColumnElement[Any], reason: sa.ColumnElement[Any], message: sa.ColumnElement[Any]
) -> dict[str, sa.ColumnElement[Any]]:
    """The error columns of a failure written `code`/`reason`/`message`: the run limit's
    instead when the job ran as often as it may and this failure cut its run (`CUT_REASONS`)
    (bound: `max_runs`, `limit_message`)."""
    jobs = t.jobs.c
    capped = sa.and_(_at_run_limit(), code.in_(RETRYABLE_CODES), reason.in_(CUT_REASONS))
    message_param = sa.bindparam("limit_message", type_=jobs.error_message.type)
    return {
        "error_code": sa.case((capped, sa.literal(RUN_LIMIT_CODE)), else_=code),
        "error_reason": sa.case((capped, sa.literal(JOB_RUN_LIMIT)), else_=reason),
        "error_message": sa.case((capped, message_param), else_=message),
    }


def _limit_params(max_runs: int) -> dict[str, Any]:
    return {"max_runs": max_runs, "limit_message": run_limit_message(max_runs)}


def _claim_statement(*, start: bool) -> sa.Insert:
    """claim_job's statement, built once per `start` (bind parameters named as NewJob's).

    A re-claimable job that ran `max_runs` times already, its last run cut (failed with one
    of `CUT_REASONS`, or its lease run out: its gateway killed), is not run again: the same
    update fails it for good (run_limit.py), and returns it failed (not claimed)."""
    jobs = t.jobs.c
    capped = sa.and_(
        _at_run_limit(),
        sa.or_(
            jobs.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
            jobs.error_reason.in_(CUT_REASONS),
        ),
    )
    limit_message = sa.bindparam("limit_message", type_=jobs.error_message.type)
    started: dict[str, Any] = {}
    if start:
        started = {
            "status": sa.case((capped, JobStatus.FAILED.value), else_=JobStatus.RUNNING.value),
            "attempts": sa.case((capped, jobs.attempts), else_=jobs.attempts + 1),
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
        "parent_channel_id",
        "nsfw_channel",
        "replaces_job_id",
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
            "status": sa.case((capped, JobStatus.FAILED.value), else_=JobStatus.QUEUED.value),
            "error_code": sa.case((capped, RUN_LIMIT_CODE), else_=sa.null()),
            "error_reason": sa.case((capped, JOB_RUN_LIMIT), else_=sa.null()),
            "error_message": sa.case((capped, limit_message), else_=sa.null()),
            "content": sa.case((capped, jobs.content), else_=""),
            "finished_at": sa.case((capped, sa.func.now()), else_=sa.null()),
            "heartbeat_at": sa.func.clock_timestamp(),
            "retry_until": None,  # a retry's lease ends with its claim (retries.py)
            **started,
        },
        where=reclaimable,
    ).returning(*t.jobs.c)


# The turn's statements run through tzurot.db.direct (no per-call execution machinery).
@functools.cache
def _orphans_statement() -> sa.Update:
    """fail_orphaned_jobs' statement, built once (a sweep runs it every few seconds;
    building it cost more CPU than running it)."""
    jobs = t.jobs.c
    lease = sa.bindparam("lease_seconds", type_=sa.Float)
    stale = sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, 0, 0, 0, lease)
    return (
        sa.update(t.jobs)
        .where(
            jobs.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
            sa.func.coalesce(jobs.heartbeat_at, jobs.created_at) < stale,
        )
        .values(
            status=JobStatus.FAILED.value,
            finished_at=sa.func.now(),
            **_run_limit_values(
                sa.bindparam("orphan_code", type_=jobs.error_code.type),
                sa.bindparam("orphan_reason", type_=jobs.error_reason.type),
                sa.bindparam("orphan_message", type_=jobs.error_message.type),
            ),
        )
        .returning(jobs.id, jobs.attempts, jobs.error_reason)
    )


@functools.cache
def _pending_history_statement() -> sa.Select[tuple[object, ...]]:
    """jobs_pending_history's statement, built once: a page after (`after_at`, `after_id`)."""
    jobs = t.jobs.c
    after = sa.tuple_(jobs.created_at, jobs.id) > sa.tuple_(
        sa.bindparam("after_at", type_=sa.DateTime(timezone=True)),
        sa.bindparam("after_id", type_=jobs.id.type),
    )
    return (
        sa.select(t.jobs)
        .where(
            jobs.status == JobStatus.STREAMED.value,
            sa.func.cardinality(jobs.delivered_message_ids) > 0,
            jobs.error_code.is_(None),  # not refused for good (refuse_history)
            after,
        )
        .order_by(jobs.created_at, jobs.id)
        .limit(sa.bindparam("row_limit", type_=sa.Integer))
    )


_CLAIM = direct.Statement(_claim_statement(start=False))
_CLAIM_AND_START = direct.Statement(_claim_statement(start=True))
_JOB_BY_KEY = direct.Statement(
    sa.select(t.jobs).where(t.jobs.c.idempotency_key == sa.bindparam("idempotency_key"))
)


CONTEXT_COLUMNS = ("user_content", "user_attachments", "prompt_report", "reasoning")
"""What a finished reply leaves on its job for delivery and Inspect (job_context.py)."""


def _finish_job_statement() -> sa.Select[Any]:
    """UPDATE the job to streamed and INSERT its usage row from what the UPDATE returned."""
    jobs = t.jobs.c
    attempt = sa.bindparam("attempt", type_=sa.Integer)
    done = (
        sa.update(t.jobs)
        .where(
            jobs.id == sa.bindparam("job_id", type_=jobs.id.type),
            # The run's own attempt, still running: not one whose lease another run took.
            sa.or_(
                attempt.is_(None),
                sa.and_(jobs.attempts == attempt, jobs.status == JobStatus.RUNNING.value),
            ),
        )
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
                "images",
                "request_type",
                "estimated",
            ],
            sa.select(
                done.c.user_id,
                done.c.id,
                done.c.provider,
                done.c.model,
                done.c.input_tokens,
                done.c.output_tokens,
                sa.bindparam("v_images", type_=sa.Integer),
                sa.bindparam("v_request_type", type_=sa.Text),
                # Some of the answer's tokens are Tzurot's estimate (Usage.estimated).
                sa.bindparam("v_estimated", type_=sa.Boolean),
            ),
        )
        .cte("logged")
    )
    return sa.select(done).add_cte(logged)


_FINISH_JOB = _finish_job_statement()
_FINISH_JOB_ALONE = direct.Statement(_FINISH_JOB)
_JOB_BY_ID = direct.Statement(
    sa.select(t.jobs).where(t.jobs.c.id == sa.bindparam("job_id", type_=t.jobs.c.id.type))
)


def _deliver_statement() -> sa.Select[Any]:
    """Marks the streamed job delivered, bumps the activity counter when asked, and reads the
    job's group round (if any), in one statement: what ConfirmDelivery writes and needs after
    the exchange is stored. A scheduled turn's bot event is delivered with it (its message
    ids), so the turn is never sent to the bot again once its answer is posted. A round's
    last answer (or a chain reply) owes its group follow-up from this statement on
    (`group_follow_ups`, held by the delivering gateway for `follow_up_seconds`): a gateway
    killed before the follow-up ran leaves it to the sweep (delivery_flow.py
    `run_owed_follow_ups`), whichever path delivered it.

    Only a job still streamed is delivered, and the counter is bumped only when it was: of
    concurrent confirmations of one job (each waits for the other's row lock, then sees the
    job delivered), exactly one delivers it and counts it."""
    jobs = t.jobs.c
    done = (
        sa.update(t.jobs)
        .where(
            jobs.id == sa.bindparam("job_id", type_=jobs.id.type),
            jobs.status == JobStatus.STREAMED.value,
        )
        .values(
            status=JobStatus.DELIVERED.value,
            delivered_message_ids=sa.bindparam(
                "message_ids", type_=jobs.delivered_message_ids.type
            ),
            delivered_at=sa.func.now(),
            # A refusal of its history (refuse_history) no longer holds: it is stored now.
            error_code=None,
            error_reason=None,
            error_message=None,
        )
        .returning(*t.jobs.c)
        .cte("done")
    )
    counters = g.activity_counters
    bump = insert(counters).from_select(
        ["name", "value"],
        sa.select(sa.bindparam("counter", type_=sa.Text), sa.literal(1, sa.BigInteger)).where(
            sa.bindparam("bump", type_=sa.Boolean), sa.exists(sa.select(done.c.id))
        ),
    )
    bumped = (
        bump.on_conflict_do_update(
            index_elements=[counters.c.name], set_={"value": counters.c.value + 1}
        )
        .returning(counters.c.value)
        .cte("bumped")
    )
    e = g.bot_events.c
    key = done.c.idempotency_key
    turn_id = sa.func.substr(key, len(TURN_KEY_PREFIX) + 1)
    event_id = sa.case(
        (key.regexp_match(_TURN_KEY_PATTERN), sa.cast(turn_id, e.id.type)), else_=sa.null()
    )
    turn_event = (
        sa.update(g.bot_events)
        .where(e.id == event_id, e.delivered_at.is_(None))
        .values(
            delivered_at=sa.func.now(), message_ids=done.c.delivered_message_ids, dropped_reason=""
        )
        .returning(e.id)
        .cte("turn_event")
    )
    gj = g.group_jobs.c
    # Only a round's last answer has a follow-up a repeat does anything with (the chain
    # reply, and the last speaker with it: groups.after_delivery's `again`).
    hold = sa.func.make_interval(
        0, 0, 0, 0, 0, 0, sa.bindparam("follow_up_seconds", type_=sa.Float)
    )
    owed = (
        insert(g.group_follow_ups)
        .from_select(
            ["job_id", "due_at"],
            sa.select(done.c.id, sa.func.now() + hold)
            .select_from(done.join(g.group_jobs, gj.job_id == done.c.id))
            .where(gj.last_in_round),
        )
        .on_conflict_do_nothing(index_elements=[g.group_follow_ups.c.job_id])
        .returning(g.group_follow_ups.c.job_id)
        .cte("owed")
    )
    return sa.select(
        done,
        gj.job_id.label("group_job_id"),
        gj.conversation_id.label("group_conversation_id"),
        gj.round_id.label("group_round_id"),
        gj.depth.label("group_depth"),
        gj.last_in_round.label("group_last_in_round"),
        sa.select(bumped.c.value).scalar_subquery().label("counter"),
        sa.select(turn_event.c.id).scalar_subquery().label("turn_event_id"),
        sa.exists(sa.select(owed.c.job_id)).label("follow_up_owed"),
    ).select_from(done.outerjoin(g.group_jobs, gj.job_id == done.c.id))


_DELIVER = direct.Statement(_deliver_statement())


@dataclass(frozen=True)
class Delivered:
    """A job marked delivered, its group round (None outside one), the activity counter's
    new value (None when it was not bumped), and whether its group follow-up is owed (a
    `group_follow_ups` row, for `GroupStore.follow_up_done` once it ran)."""

    job: Job
    group_job: GroupJob | None
    counter: int | None
    follow_up_owed: bool = False


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
    parent_channel_id: str = ""
    nsfw_channel: bool = False
    replaces_job_id: str = ""  # a 🔄's: the job it replaces


class JobQueries(SqlBase):
    _max_runs: int = DEFAULT_MAX_RUNS
    """The runs of one job at most (run_limit.py; GatewayStore's `max_runs`)."""

    def _limit_params(self) -> dict[str, Any]:
        return _limit_params(self._max_runs)

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
            "parent_channel_id": new.parent_channel_id,
            "nsfw_channel": new.nsfw_channel,
            "replaces_job_id": new.replaces_job_id or None,
            "lease_seconds": lease_seconds,
            **_limit_params(self._max_runs),
        }
        # One statement: its own transaction.
        row = await direct.fetchrow(self._autocommit, _CLAIM_AND_START if start else _CLAIM, params)
        if row is not None:
            job = _job(row)
            if job.status is not JobStatus.FAILED:
                return job, True
            _log_run_limit(job.id, job.attempts, "CLAIMED_AT_LIMIT")  # failed for good now
            return job, False
        return _job(_one(await direct.fetchrow(self._autocommit, _JOB_BY_KEY, params))), False

    async def heartbeat(self, job_id: str, attempt: int | None = None) -> bool:
        """The job's runner (of `attempt`, if given) is alive: renew its lease. False when the
        job is no longer that run's (its lease ran out and another run took it over)."""
        where = [t.jobs.c.id == job_id, t.jobs.c.status == JobStatus.RUNNING.value]
        if attempt is not None:
            where.append(t.jobs.c.attempts == attempt)
        async with self._autocommit.connect() as conn:
            done = await conn.execute(
                sa.update(t.jobs).where(*where).values(heartbeat_at=sa.func.clock_timestamp())
            )
            return done.rowcount > 0

    async def get_job(self, job_id: str) -> Job | None:
        return await self._one_job(t.jobs.c.id == job_id)

    async def get_job_with_context(self, job_id: str) -> tuple[Job, JobContext] | None:
        """The job and its context columns (job_context.py), in one read."""
        row = await direct.fetchrow(self._autocommit, _JOB_BY_ID, {"job_id": job_id})
        if row is None:
            return None
        return _job(row), context_from_row(row)

    async def get_job_by_key(self, idempotency_key: str) -> Job | None:
        return await self._one_job(t.jobs.c.idempotency_key == idempotency_key)

    async def get_job_by_delivered_message(self, message_id: str) -> Job | None:
        """The job that posted `message_id` (uses the GIN index on delivered_message_ids)."""
        return await self._one_job(
            t.jobs.c.delivered_message_ids.contains(sa.literal([message_id], ARRAY(sa.Text)))
        )

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
        *,
        files: Sequence[GeneratedFile] = (),
        attempt: int | None = None,
    ) -> Job:
        """Marks the job streamed with its answer and records usage, in one statement (and,
        in the same transaction, keeps the answer's `files` for replays).

        `context`: the job's context columns (job_context.context_columns). With `attempt`
        (the run's), only while the job is still that run's: else nothing is written (no
        answer, no usage, no files) and `taken_over` is raised. The files are written only
        once the job's row is updated (and locked): a job deleted meanwhile (with its
        personality or its user's data) is then lost as a text answer's is, not refused by
        its files' foreign key.
        """
        params = {
            "job_id": job_id,
            "attempt": attempt,
            "v_content": content,
            "v_provider": usage.provider,
            "v_model": usage.model,
            "v_input_tokens": usage.input_tokens,
            "v_output_tokens": usage.output_tokens,
            "v_images": usage.images,
            "v_request_type": request_type,
            "v_estimated": usage.estimated,
            **{f"v_{name}": None for name in CONTEXT_COLUMNS},
            **{f"v_{name}": value for name, value in (context or {}).items()},
        }
        if not files:
            # One statement: its own transaction.
            row = await direct.fetchrow(self._autocommit, _FINISH_JOB_ALONE, params)
            return _job(_not_finished(job_id, attempt) if row is None else row)
        f = t.job_files.c
        async with self._engine.begin() as conn:
            finished = (await conn.execute(_FINISH_JOB, params)).first()
            if finished is None:
                _not_finished(job_id, attempt)  # raises: nothing written
            await conn.execute(sa.delete(t.job_files).where(f.job_id == job_id))  # a retry's
            await conn.execute(
                sa.insert(t.job_files),
                [
                    {
                        "job_id": job_id,
                        "position": n,
                        "filename": file.filename,
                        "content_type": file.content_type,
                        "data": file.data,
                        "description": file.description,
                    }
                    for n, file in enumerate(files)
                ],
            )
            return _job(finished._mapping)

    async def job_files(self, job_id: str) -> tuple[GeneratedFile, ...]:
        """The files the job's answer carried, in order."""
        f = t.job_files.c
        async with self._autocommit.connect() as conn:
            rows = await conn.execute(
                sa.select(f.filename, f.content_type, f.data, f.description)
                .where(f.job_id == job_id)
                .order_by(f.position)
            )
            return tuple(GeneratedFile(*row) for row in rows)

    async def fail_job(self, job_id: str, error: JobError, attempt: int | None = None) -> bool:
        """Fails the job if it is still queued or running (in `attempt`, if given: not a run
        that took it over); whether it did. A job that has finished (its answer stored, its
        usage counted) stays finished, whatever goes wrong after (a client gone, a later
        write refused)."""
        jobs = t.jobs.c
        where = [jobs.id == job_id]
        if attempt is not None:
            where.append(jobs.attempts == attempt)
        async with self._autocommit.connect() as conn:
            rows = list(await conn.execute(_failing(error, *where), self._limit_params()))
        _log_run_limits(rows, error)
        return bool(rows)

    async def release_jobs(self, job_ids: Sequence[str], error: JobError) -> list[str]:
        """Fails those of `job_ids` still queued or running with `error` (a retryable one:
        the stopping gateway's); returns the ids it changed."""
        jobs = t.jobs.c
        stmt = _failing(error, jobs.id.in_(list(job_ids)))
        async with self._autocommit.connect() as conn:
            rows = list(await conn.execute(stmt, self._limit_params()))
        _log_run_limits(rows, error)
        return [str(row.id) for row in rows]

    async def fail_orphaned_jobs(self, lease_seconds: float, error: JobError) -> list[str]:
        """Fails (with `error`) the queued or running jobs whose heartbeat is older than the
        lease: their gateway died. Returns their ids."""
        params = {
            "lease_seconds": lease_seconds,
            "orphan_code": error.code,
            "orphan_reason": error.reason,
            "orphan_message": error.message,
            **self._limit_params(),
        }
        async with self._autocommit.connect() as conn:
            rows = list(await conn.execute(_orphans_statement(), params))
        _log_run_limits(rows, error)
        return [str(row.id) for row in rows]

    async def note_delivery(self, job_id: str, message_ids: Sequence[str]) -> Job:
        """The answer was posted but its history is not stored yet: keeps the message ids on
        the streamed job, which `jobs_pending_history` then finds."""
        return await self._update_job(job_id, delivered_message_ids=list(message_ids))

    async def refuse_history(self, job_id: str, error: JobError) -> None:
        """Memory refused the streamed job's history for good (`error`, kept as the job's
        error): `jobs_pending_history` no longer returns it."""
        jobs = t.jobs.c
        async with self._autocommit.connect() as conn:
            await conn.execute(
                sa.update(t.jobs)
                .where(jobs.id == job_id, jobs.status == JobStatus.STREAMED.value)
                .values(
                    error_code=error.code, error_reason=error.reason, error_message=error.message
                )
            )

    async def jobs_pending_history(self, limit: int = 100, after: Job | None = None) -> list[Job]:
        """Streamed jobs with delivered messages (posted, history still to be stored) whose
        history was not refused for good, oldest first, from after the job `after` (the last
        of the previous page)."""
        params: dict[str, object] = {
            "row_limit": limit,
            "after_at": after.created_at if after else datetime.min.replace(tzinfo=UTC),
            "after_id": after.id if after else str(uuid.UUID(int=0)),
        }
        async with self._autocommit.connect() as conn:
            rows = await conn.execute(_pending_history_statement(), params)
            return [_job(row._mapping) for row in rows]

    async def mark_delivered(self, job_id: str, message_ids: Sequence[str]) -> Job:
        return await self._update_job(
            job_id,
            status=JobStatus.DELIVERED.value,
            delivered_message_ids=list(message_ids),
            delivered_at=sa.func.now(),
        )

    async def deliver(
        self,
        job_id: str,
        message_ids: Sequence[str],
        *,
        bump_counter: str = "",
        follow_up_seconds: float = FOLLOW_UP_HOLD_SECONDS,
    ) -> Delivered | None:
        """mark_delivered of a streamed job, plus the job's group round, (with
        `bump_counter`, a counter's name) one more count on that counter, and (a round's last
        answer) its group follow-up owed, held by the caller for `follow_up_seconds` before a
        sweep may run it: one statement. None when the job is not streamed (another
        confirmation delivered it first)."""
        params = {
            "job_id": job_id,
            "message_ids": list(message_ids),
            "counter": bump_counter,
            "bump": bool(bump_counter),
            "follow_up_seconds": follow_up_seconds,
        }
        m = await direct.fetchrow(self._autocommit, _DELIVER, params)  # its own transaction
        if m is None:
            return None
        group = None
        if m["group_job_id"] is not None:
            group = GroupJob(
                str(m["group_job_id"]),
                m["group_conversation_id"],
                m["group_round_id"],
                m["group_depth"],
                m["group_last_in_round"],
            )
        counter = None if m["counter"] is None else int(m["counter"])
        return Delivered(_job(m), group, counter, bool(m["follow_up_owed"]))

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


def _failing(error: JobError, *where: sa.ColumnElement[bool]) -> sa.Update:
    """Fails the jobs `where` selects that are still queued or running, with `error` (the
    run limit's instead on a job that ran as often as it may, when `error` is retryable:
    bound `max_runs` and `limit_message`); returns their id, attempts and error reason."""
    jobs = t.jobs.c
    return (
        sa.update(t.jobs)
        .where(*where, jobs.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))
        .values(
            status=JobStatus.FAILED.value,
            finished_at=sa.func.now(),
            **_run_limit_values(
                sa.literal(error.code, jobs.error_code.type),
                sa.literal(error.reason, jobs.error_reason.type),
                sa.literal(error.message, jobs.error_message.type),
            ),
        )
        .returning(jobs.id, jobs.attempts, jobs.error_reason)
    )


def _log_run_limits(rows: Sequence[Any], error: JobError) -> None:
    """Tells the operator of each job just failed for good at its run limit (its id, its
    runs and the failure that was its last: never a secret)."""
    for row in rows:
        if row.error_reason == JOB_RUN_LIMIT and error.reason != JOB_RUN_LIMIT:
            _log_run_limit(str(row.id), int(row.attempts), error.reason)


def _log_run_limit(job_id: str, runs: int, last: str) -> None:
    log.warning("job.run_limit_reached", job_id=job_id, runs=runs, last_failure=last)


JOB_TAKEN_OVER = "JOB_TAKEN_OVER"


def taken_over(job_id: str) -> FailedPrecondition:
    """The error of a run whose job another run took over (this one lost its lease)."""
    return FailedPrecondition(
        f"job {job_id} was taken over by another run (this one lost its lease)",
        reason=JOB_TAKEN_OVER,
    )


def _not_finished(job_id: str, attempt: int | None) -> NoReturn:
    """No job to finish: none of that id (NoResultFound), or (with the run's `attempt`)
    not that run's any more."""
    if attempt is None:
        raise NoResultFound("No row was found when one was required")
    raise taken_over(job_id)


def _one(row: Any) -> Any:
    """The row a statement must return (NoResultFound, as `Result.one()`, when none)."""
    if row is None:
        raise NoResultFound("No row was found when one was required")
    return row
