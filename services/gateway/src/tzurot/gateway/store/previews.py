"""Answer previews: the Discord messages a job's answer is being streamed as, and the jobs
whose bot died before confirming them (unfinished answers, tzurot.gateway.unfinished)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import sqlalchemy as sa

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import Job, JobStatus
from tzurot.gateway.store.base import SqlBase
from tzurot.gateway.store.rows import job_from_row

UNFINISHED_KIND = "unfinished"


@functools.cache
def _unfinished_statement() -> sa.Select[tuple[object, ...]]:
    """unfinished_jobs' statement, built once (a sweep runs it every few seconds; building
    it cost more CPU than running it)."""
    jobs = t.jobs.c
    older_than = sa.bindparam("older_than_seconds", type_=sa.Float)
    before = sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than)
    handed = sa.exists().where(g.bot_events.c.job_id == jobs.id)
    return (
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
        .limit(sa.bindparam("row_limit", type_=sa.Integer))
    )


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
        params = {"older_than_seconds": older_than_seconds, "row_limit": limit}
        async with self._autocommit.connect() as conn:
            return [
                job_from_row(row._mapping)
                for row in await conn.execute(_unfinished_statement(), params)
            ]

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
