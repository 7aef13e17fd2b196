"""What the job store's parts share: the run limit's bound parameters, and a job updated by id."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Job
from tzurot.gateway.run_limit import DEFAULT_MAX_RUNS
from tzurot.gateway.store.base import SqlBase
from tzurot.gateway.store.job_claim_sql import limit_params
from tzurot.gateway.store.rows import job_from_row as _job


class JobBase(SqlBase):
    """Base of the job store's parts: the run limit, and a job updated by id."""

    _max_runs: int = DEFAULT_MAX_RUNS
    """The runs of one job at most (run_limit.py; GatewayStore's `max_runs`)."""

    def _limit_params(self) -> dict[str, Any]:
        return limit_params(self._max_runs)

    async def _update_job(self, job_id: str, **values: Any) -> Job:
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            return await self._update_job_in(conn, job_id, **values)

    @staticmethod
    async def _update_job_in(conn: AsyncConnection, job_id: str, **values: Any) -> Job:
        stmt = sa.update(t.jobs).where(t.jobs.c.id == job_id).values(**values).returning(*t.jobs.c)
        return _job((await conn.execute(stmt)).one()._mapping)
