"""Answer previews: the Discord messages a job's answer is being streamed as, and the jobs
whose bot died before confirming them (unfinished answers, tzurot.gateway.unfinished)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import Job, JobStatus
from tzurot.gateway.store.base import SqlBase
from tzurot.gateway.store.rows import job_from_row

UNFINISHED_KIND = "unfinished"


class PreviewQueries(SqlBase):
    async def note_preview(self, job_id: str, message_ids: Sequence[str]) -> bool:
        """Records the preview of a job not yet delivered; False when there is no such job
        (or it was delivered already: nothing left to finish)."""
        jobs = t.jobs.c
        stmt = (
            sa.update(t.jobs)
            .where(jobs.id == job_id, jobs.status != JobStatus.DELIVERED.value)
            .values(preview_message_ids=list(message_ids))
            .returning(jobs.id)
        )
        async with self._autocommit.connect() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def unfinished_jobs(self, older_than_seconds: float, limit: int = 50) -> list[Job]:
        """Jobs still showing a preview, undelivered, finished (streamed or failed) more than
        `older_than_seconds` ago, not handed to the bot yet (no `unfinished` event)."""
        jobs = t.jobs.c
        before = sa.func.clock_timestamp() - sa.func.make_interval(
            0, 0, 0, 0, 0, 0, sa.literal(older_than_seconds, sa.Float)
        )
        handed = sa.exists().where(g.bot_events.c.job_id == jobs.id)
        stmt = (
            sa.select(t.jobs)
            .where(
                sa.func.cardinality(jobs.preview_message_ids) > 0,
                jobs.delivered_at.is_(None),
                sa.func.cardinality(jobs.delivered_message_ids) == 0,
                jobs.status.in_([JobStatus.STREAMED.value, JobStatus.FAILED.value]),
                jobs.finished_at < before,
                ~handed,
            )
            .order_by(jobs.finished_at)
            .limit(limit)
        )
        async with self._autocommit.connect() as conn:
            return [job_from_row(row._mapping) for row in await conn.execute(stmt)]

    async def claim_preview_retry(self, job_id: str) -> bool:
        """Marks the job's answer as being generated again; False when another replica (or
        an earlier sweep) did already: it is generated again at most once."""
        jobs = t.jobs.c
        stmt = (
            sa.update(t.jobs)
            .where(jobs.id == job_id, jobs.preview_retried_at.is_(None))
            .values(preview_retried_at=sa.func.now())
            .returning(jobs.id)
        )
        async with self._autocommit.connect() as conn:
            return (await conn.execute(stmt)).first() is not None
