"""Claiming a job: inserted for its idempotency key or claimed again (a retryable failure, an
expired lease), started, and its lease renewed while it runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import NoResultFound

from tzurot.db import direct
from tzurot.gateway import tables as t
from tzurot.gateway.domain import Job, JobStatus
from tzurot.gateway.store.job_base import JobBase
from tzurot.gateway.store.job_claim_sql import CLAIM, CLAIM_AND_START, JOB_BY_KEY, limit_params
from tzurot.gateway.store.job_outcomes import log_run_limit
from tzurot.gateway.store.rows import job_from_row as _job


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


class JobClaims(JobBase):
    """Jobs claimed, started and leased."""

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
            **limit_params(self._max_runs),
        }
        # One statement: its own transaction.
        row = await direct.fetchrow(self._autocommit, CLAIM_AND_START if start else CLAIM, params)
        if row is not None:
            job = _job(row)
            if job.status is not JobStatus.FAILED:
                return job, True
            log_run_limit(job.id, job.attempts, "CLAIMED_AT_LIMIT")  # failed for good now
            return job, False
        return _job(_one(await direct.fetchrow(self._autocommit, JOB_BY_KEY, params))), False

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

    async def start_attempt(self, job_id: str) -> Job:
        return await self._update_job(
            job_id,
            status=JobStatus.RUNNING.value,
            attempts=t.jobs.c.attempts + 1,
            heartbeat_at=sa.func.clock_timestamp(),
            started_at=sa.func.coalesce(t.jobs.c.started_at, sa.func.now()),
        )


def _one(row: Any) -> Any:
    """The row a statement must return (NoResultFound, as `Result.one()`, when none)."""
    if row is None:
        raise NoResultFound("No row was found when one was required")
    return row
