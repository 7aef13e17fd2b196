"""What is left of a job its run or its client no longer finds: the facts lost_jobs.py tells
a taken-over job from one deleted with its personality or its user's data."""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import Usage
from tzurot.gateway.store.base import SqlBase
from tzurot.gateway.store.previews import UNFINISHED_KIND, WITHHELD_REASONS


class JobLoss(NamedTuple):
    """A job its run lost: whether its row is gone, whether its user's data is being deleted
    (or is gone), and whether its personality is (deleted, or its deletion recorded)."""

    job_gone: bool
    user_deleting: bool
    personality_deleted: bool


class LostJobQueries(SqlBase):
    async def job_loss(self, job_id: str, user_id: str, personality_id: str) -> JobLoss:
        """What became of the job of `user_id` toward `personality_id` its run lost: one
        statement. A deletion records itself on its row before it deletes the jobs
        (store/in_flight.py, store/privacy.py), so a job gone with one finds it recorded."""
        jobs, u, p = t.jobs.c, t.users.c, t.personalities.c
        stmt = sa.select(
            ~sa.exists().where(jobs.id == job_id),
            ~sa.exists().where(u.id == user_id, u.deletion_requested_at.is_(None)),
            ~sa.exists().where(p.id == personality_id, p.deletion_requested_at.is_(None)),
        )
        async with self._autocommit.connect() as conn:
            gone, user_deleting, deleted = (await conn.execute(stmt)).one()
        return JobLoss(bool(gone), bool(user_deleting), bool(deleted))

    async def record_lost_run_usage(
        self, job_id: str, user_id: str, usage: Usage, request_type: str
    ) -> bool:
        """Records what a run that lost its job was billed, as paid but not delivered
        (`failed`): the provider answered in full, but another run took the job over, or it
        went with its personality. Not for a user whose data is being deleted (nothing more
        is kept of them). True when recorded."""
        u, log = t.users.c, t.usage_log
        stmt = sa.insert(log).from_select(
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
                "failed",
            ],
            sa.select(
                sa.literal(user_id, u.id.type),
                sa.literal(job_id, log.c.job_id.type),
                sa.literal(usage.provider),
                sa.literal(usage.model),
                sa.literal(usage.input_tokens),
                sa.literal(usage.output_tokens),
                sa.literal(usage.images),
                sa.literal(request_type),
                sa.literal(usage.estimated),
                sa.true(),
            ).where(sa.exists().where(u.id == user_id, u.deletion_requested_at.is_(None))),
        )
        async with self._autocommit.connect() as conn:
            return (await conn.execute(stmt)).rowcount > 0

    async def withheld_reason(self, job_id: str) -> str:
        """Why the answer of `job_id` (a job gone) was handed to the bot withheld when its
        deletion dropped it (one of WITHHELD_REASONS, store/previews.withhold_unfinished);
        "" when it was not."""
        e = g.bot_events.c
        stmt = sa.select(e.reason).where(
            e.dedup_key == f"{UNFINISHED_KIND}:{job_id}", e.reason.in_(WITHHELD_REASONS)
        )
        async with self._autocommit.connect() as conn:
            return str(await conn.scalar(stmt) or "")
