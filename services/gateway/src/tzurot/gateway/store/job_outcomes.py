"""A job's outcomes: its answer stored with its usage (and files), or the job failed (one run's,
a stopping gateway's, an orphan's), each fenced by the run's attempt; the run limit logged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import NoResultFound

from tzurot.db import direct
from tzurot.gateway import tables as t
from tzurot.gateway.domain import GeneratedFile, Job, JobError, Usage
from tzurot.gateway.run_limit import JOB_RUN_LIMIT
from tzurot.gateway.store.job_base import JobBase
from tzurot.gateway.store.job_claim_sql import failing, orphans_statement
from tzurot.gateway.store.job_finish_sql import CONTEXT_COLUMNS, FINISH_JOB, FINISH_JOB_ALONE
from tzurot.gateway.store.rows import job_from_row as _job
from tzurot.runtime.errors import FailedPrecondition

log = structlog.get_logger(__name__)


class JobOutcomes(JobBase):
    """A run's answer stored, or jobs failed."""

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
            row = await direct.fetchrow(self._autocommit, FINISH_JOB_ALONE, params)
            return _job(_not_finished(job_id, attempt) if row is None else row)
        f = t.job_files.c
        async with self._engine.begin() as conn:
            finished = (await conn.execute(FINISH_JOB, params)).first()
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
            rows = list(await conn.execute(failing(error, *where), self._limit_params()))
        _log_run_limits(rows, error)
        return bool(rows)

    async def release_jobs(self, job_ids: Sequence[str], error: JobError) -> list[str]:
        """Fails those of `job_ids` still queued or running with `error` (a retryable one:
        the stopping gateway's); returns the ids it changed."""
        jobs = t.jobs.c
        stmt = failing(error, jobs.id.in_(list(job_ids)))
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
            rows = list(await conn.execute(orphans_statement(), params))
        _log_run_limits(rows, error)
        return [str(row.id) for row in rows]


def _log_run_limits(rows: Sequence[Any], error: JobError) -> None:
    """Tells the operator of each job just failed for good at its run limit (its id, its
    runs and the failure that was its last: never a secret)."""
    for row in rows:
        if row.error_reason == JOB_RUN_LIMIT and error.reason != JOB_RUN_LIMIT:
            log_run_limit(str(row.id), int(row.attempts), error.reason)


def log_run_limit(job_id: str, runs: int, last: str) -> None:
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
