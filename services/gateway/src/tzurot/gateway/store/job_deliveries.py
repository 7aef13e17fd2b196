"""A finished job's delivery: its posted messages noted, its history refused or paged while owed,
and the job delivered (ConfirmDelivery's one statement)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from tzurot.db import direct
from tzurot.gateway import tables as t
from tzurot.gateway.domain import GroupJob, Job, JobError, JobStatus
from tzurot.gateway.store.job_base import JobBase
from tzurot.gateway.store.job_finish_sql import DELIVER, pending_history_statement
from tzurot.gateway.store.rows import job_from_row as _job

FOLLOW_UP_HOLD_SECONDS = 20.0
"""How long a delivery's group follow-up is its delivering gateway's before a sweep may run
it (the gateway passes its job lease)."""


@dataclass(frozen=True)
class Delivered:
    """A job marked delivered, its group round (None outside one), the activity counter's
    new value (None when it was not bumped), and whether its group follow-up is owed (a
    `group_follow_ups` row, for `GroupStore.follow_up_done` once it ran)."""

    job: Job
    group_job: GroupJob | None
    counter: int | None
    follow_up_owed: bool = False


class JobDeliveries(JobBase):
    """Finished jobs delivered, and their history while it is owed."""

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
            rows = await conn.execute(pending_history_statement(), params)
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
        m = await direct.fetchrow(self._autocommit, DELIVER, params)  # its own transaction
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
