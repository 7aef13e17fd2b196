"""Failed jobs the gateway runs again by itself, and what GetJobStatus says of them meanwhile.

An operator's RetryJob and the unfinished-answer sweep (an answer its dying bot cut off, or
a regeneration its gateway did, unfinished.py) make a failed job retryable (RETRY_REQUESTED),
then claim it as a resend would. In between the row is still `failed`, and GetJobStatus used
to say so: a poller (the CLI, an API client) gave up on a job about to run again. Setting the
row `queued` instead would leave it queued for good when the retry is refused before its
claim, or its gateway dies. So the row stays `failed` (only a claim makes a job queued or
running) and:

- making it retryable leases the retry (`retry_until`, the job lease from now); the claim
  ends the lease (the job is `running`), and so does a refusal before the claim
  (`end_retry`: the job reads failed at once, with the refusal's reason and words, still
  retryable so that a resend may run it); a gateway that dies in between leaves the lease to
  run out, and the job reads failed (RETRY_REQUESTED: a resend runs it);
- `job_outlook` reads a job with whether the gateway will run it again: while its retry is
  leased, or while the sweep is still to generate a half answer again (previews.regenerates:
  its dying bot cut it off, or its gateway cut its regeneration short, and it was not
  generated again as often as it may be). GetJobStatus reports such a job
  `queued`, without the error of the attempt that failed; every other failed job is failed,
  for its pollers to stop.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Job, JobError, JobStatus
from tzurot.gateway.run_limit import (
    CUT_REASONS,
    DEFAULT_MAX_RUNS,
    JOB_RUN_LIMIT,
    run_limit_message,
)
from tzurot.gateway.store.base import SqlBase, lease_from_now
from tzurot.gateway.store.previews import regenerates
from tzurot.gateway.store.rows import job_from_row
from tzurot.runtime.errors import FailedPrecondition


def runs_again(max_age_seconds: float) -> sa.ColumnElement[bool]:
    """A failed job the gateway will run again by itself (the module says when; the sweep
    regenerates only answers that ended less than `max_age_seconds` ago)."""
    jobs = t.jobs.c
    leased = sa.and_(jobs.retry_until.is_not(None), jobs.retry_until > sa.func.clock_timestamp())
    return sa.and_(
        jobs.status == JobStatus.FAILED.value, sa.or_(leased, regenerates(max_age_seconds))
    )


class RetryQueries(SqlBase):
    _max_runs: int = DEFAULT_MAX_RUNS
    """The runs of one job at most (run_limit.py; GatewayStore's `max_runs`)."""

    async def release_failed_job(
        self, job_id: str, error: JobError, *, lease_seconds: float
    ) -> None:
        """A failed job becomes retryable (`error`, one of RETRYABLE_CODES) for the claim,
        its retry leased for `lease_seconds` (until the claim or `end_retry`). Not one that
        ran as often as a job may, its last run cut (run_limit.py): FAILED_PRECONDITION
        `JOB_RUN_LIMIT`, the job left as it is."""
        jobs = t.jobs.c
        at_limit = sa.or_(
            jobs.error_reason == JOB_RUN_LIMIT,
            sa.and_(jobs.attempts >= self._max_runs, jobs.error_reason.in_(CUT_REASONS)),
        )

        def unless_at_limit(column: sa.ColumnElement[Any], value: Any) -> sa.ColumnElement[Any]:
            return sa.case((at_limit, column), else_=value)  # at its limit: left as it is

        async with self._autocommit.connect() as conn:
            capped = await conn.scalar(
                sa.update(t.jobs)
                .where(jobs.id == job_id, jobs.status == JobStatus.FAILED.value)
                .values(
                    error_code=unless_at_limit(jobs.error_code, error.code),
                    error_reason=unless_at_limit(jobs.error_reason, error.reason),
                    error_message=unless_at_limit(jobs.error_message, error.message),
                    retry_until=unless_at_limit(jobs.retry_until, lease_from_now(lease_seconds)),
                )
                .returning(at_limit)
            )
        if capped:
            raise FailedPrecondition(run_limit_message(self._max_runs), reason=JOB_RUN_LIMIT)

    async def end_retry(self, job_id: str, refusal: JobError | None = None) -> None:
        """The retry is over without its claim (a claim ended the lease already, and then
        this does nothing): the job reads failed again at once, with `refusal` (why it was
        not run) as its error when given."""
        jobs = t.jobs.c
        values: dict[str, Any] = {"retry_until": None}
        if refusal is not None:
            values.update(
                error_code=refusal.code,
                error_reason=refusal.reason,
                error_message=refusal.message,
            )
        async with self._autocommit.connect() as conn:
            await conn.execute(
                sa.update(t.jobs)
                .where(
                    jobs.id == job_id,
                    jobs.status == JobStatus.FAILED.value,
                    jobs.retry_until.is_not(None),
                )
                .values(**values)
            )

    async def job_outlook(
        self,
        *,
        job_id: str = "",
        idempotency_key: str = "",
        delivered_message_id: str = "",
        max_age_seconds: float,
    ) -> tuple[Job, bool] | None:
        """The job (by whichever key is given) and whether the gateway will run it again
        (the sweep's reach `max_age_seconds`), read in one statement (a claim between two
        reads would make a running job look failed); None when there is no such job."""
        jobs = t.jobs.c
        if job_id:
            where = jobs.id == job_id
        elif delivered_message_id:  # uses the GIN index on delivered_message_ids
            where = jobs.delivered_message_ids.contains(
                sa.literal([delivered_message_id], ARRAY(sa.Text))
            )
        else:
            where = jobs.idempotency_key == idempotency_key
        stmt = sa.select(t.jobs, runs_again(max_age_seconds).label("runs_again")).where(where)
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else (job_from_row(row._mapping), bool(row.runs_again))
