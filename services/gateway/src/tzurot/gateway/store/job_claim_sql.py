"""The statements that claim a job for its idempotency key and that fail jobs, under the run
limit (run_limit.py): a job that ran as often as it may is failed for good instead."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from tzurot.db import direct
from tzurot.gateway import tables as t
from tzurot.gateway.domain import JobError, JobStatus
from tzurot.gateway.run_limit import CUT_REASONS, JOB_RUN_LIMIT, RUN_LIMIT_CODE, run_limit_message

# A job that failed with one of these may be tried again under the same idempotency key.
RETRYABLE_CODES = ("UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED")


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


def limit_params(max_runs: int) -> dict[str, Any]:
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
            # What this attempt asks (a message edited since the failed one: its new text).
            "request_content": sa.case(
                (capped, jobs.request_content), else_=insert_stmt.excluded.request_content
            ),
            "request_message_ids": sa.case(
                (capped, jobs.request_message_ids),
                else_=insert_stmt.excluded.request_message_ids,
            ),
            "heartbeat_at": sa.func.clock_timestamp(),
            "retry_until": None,  # a retry's lease ends with its claim (retries.py)
            **started,
        },
        where=reclaimable,
    ).returning(*t.jobs.c)


# The turn's statements run through tzurot.db.direct (no per-call execution machinery).
@functools.cache
def orphans_statement() -> sa.Update:
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


CLAIM = direct.Statement(_claim_statement(start=False))
CLAIM_AND_START = direct.Statement(_claim_statement(start=True))
JOB_BY_KEY = direct.Statement(
    sa.select(t.jobs).where(t.jobs.c.idempotency_key == sa.bindparam("idempotency_key"))
)


def failing(error: JobError, *where: sa.ColumnElement[bool]) -> sa.Update:
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
