"""Jobs read: by id (with its context columns), by idempotency key, by a message it posted, and
the files its answer carried."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from tzurot.db import direct
from tzurot.gateway import tables as t
from tzurot.gateway.domain import GeneratedFile, Job, JobContext
from tzurot.gateway.job_context import context_from_row
from tzurot.gateway.store.base import SqlBase
from tzurot.gateway.store.job_finish_sql import JOB_BY_ID
from tzurot.gateway.store.rows import job_from_row as _job


class JobReads(SqlBase):
    """Jobs and their answers' files, read."""

    async def get_job(self, job_id: str) -> Job | None:
        return await self._one_job(t.jobs.c.id == job_id)

    async def get_job_with_context(self, job_id: str) -> tuple[Job, JobContext] | None:
        """The job and its context columns (job_context.py), in one read."""
        row = await direct.fetchrow(self._autocommit, JOB_BY_ID, {"job_id": job_id})
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

    async def _one_job(self, where: sa.ColumnElement[bool]) -> Job | None:
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(sa.select(t.jobs).where(where))).one_or_none()
        return None if row is None else _job(row._mapping)
