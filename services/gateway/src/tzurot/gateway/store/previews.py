"""Answer previews: the Discord messages a job's answer is being streamed as, and the jobs
whose bot died before confirming them (unfinished answers, tzurot.gateway.unfinished)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import Job, JobStatus
from tzurot.gateway.store.base import SqlBase, lease_from_now
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.gateway.store.rows import job_from_row

UNFINISHED_KIND = "unfinished"
CLIENT_CANCELLED = "CLIENT_CANCELLED"
"""A job's failure when its client went away mid-answer (a bot that died, among others)."""
USER_DATA_DELETING = "USER_DATA_DELETING"
"""The refusal of a user whose data deletion is under way (gateway_core.user_data_deleting);
on an `unfinished` event, its answer is withheld for that reason."""


class UnfinishedJob(NamedTuple):
    """A job whose bot died before confirming it, and whether its user's data is being
    deleted (then it is not generated again, and the bot shows why instead of it)."""

    job: Job
    user_deleting: bool


def job_user_deleting() -> sa.Exists:
    """The job's user's data is being deleted (her deletion is recorded, not finished)."""
    u = t.users.c
    return sa.exists().where(u.id == t.jobs.c.user_id, u.deletion_requested_at.is_not(None))


def _unfinished(of: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """The jobs `of` selects still showing a preview, undelivered, ended (streamed or failed):
    the answers a dead bot left that the sweep hands over (`unfinished_jobs`, whatever their
    age)."""
    jobs = t.jobs.c
    return sa.and_(
        of,
        sa.func.cardinality(jobs.preview_message_ids) > 0,
        jobs.delivered_at.is_(None),
        sa.func.cardinality(jobs.delivered_message_ids) == 0,
        jobs.status.in_([JobStatus.STREAMED.value, JobStatus.FAILED.value]),
    )


def withhold_unfinished(of: sa.ColumnElement[bool]) -> sa.Insert:
    """Before the jobs `of` selects (of users whose data is being deleted) are deleted: each
    answer of theirs a dead bot left showing a preview is handed to the bot withheld
    (USER_DATA_DELETING, the preview's ids on the event, which needs no job then), or, handed
    already and not yet shown, withheld now. The bot shows her why in those messages instead
    of leaving half an answer unexplained. Run in the transaction that deletes the jobs: her
    data deletion (all her jobs), and a personality's answers in flight (`of` then says whose
    user is being deleted: her private personality's go before the rest of her data)."""
    jobs, e = t.jobs.c, g.bot_events.c
    columns = (
        "kind",
        "dedup_key",
        "guild_id",
        "channel_id",
        "personality_id",
        "job_id",
        "preview_message_ids",
        "reason",
    )
    rows = sa.select(
        sa.literal(UNFINISHED_KIND),
        sa.literal(f"{UNFINISHED_KIND}:") + sa.cast(jobs.id, sa.Text),
        jobs.guild_id,
        jobs.channel_id,
        jobs.personality_id,
        jobs.id,
        jobs.preview_message_ids,
        sa.literal(USER_DATA_DELETING),
    ).where(_unfinished(of))
    stmt = insert(g.bot_events).from_select(columns, rows)
    return stmt.on_conflict_do_update(
        index_elements=[e.dedup_key],
        set_={
            "reason": stmt.excluded.reason,
            "preview_message_ids": stmt.excluded.preview_message_ids,
        },
        where=e.delivered_at.is_(None),
    )


def keep_withheld(personalities: sa.ColumnElement[bool]) -> sa.Update:
    """Before the rows of the personalities `personalities` selects are deleted (their bot
    events go with them, ON DELETE CASCADE: no turn or greeting of theirs is posted): the
    answers handed to the bot withheld and not shown yet no longer name theirs, so they stay.
    Her data deletion deletes her private personalities with her jobs; the bot still turns
    those previews into why, in no personality's voice and posting nothing new
    (bot/unfinished.py)."""
    e, p = g.bot_events.c, t.personalities.c
    return (
        sa.update(g.bot_events)
        .where(
            e.kind == UNFINISHED_KIND,
            e.reason == USER_DATA_DELETING,
            e.delivered_at.is_(None),
            e.personality_id.in_(sa.select(p.id).where(personalities)),
        )
        .values(personality_id=None)
    )


def shown_withheld() -> sa.ColumnElement[bool]:
    """A bot event (in a statement on `bot_events`) that is an answer to be shown withheld:
    so handed over, or its job's user's data being deleted since (unfinished.py withholds it
    when it is handed out). Handed out even while its personality is being deleted, as all
    her data is: the bot shows her why in its previews, without the personality."""
    e, jobs, u = g.bot_events.c, t.jobs.c, t.users.c
    her_deletion = sa.exists().where(
        jobs.id == e.job_id, u.id == jobs.user_id, u.deletion_requested_at.is_not(None)
    )
    return sa.and_(
        e.kind == UNFINISHED_KIND,
        sa.or_(e.reason == USER_DATA_DELETING, her_deletion.correlate(g.bot_events)),
    )


def regenerates() -> sa.ColumnElement[bool]:
    """Whether the unfinished-answer sweep will generate the job's answer again (unfinished.py
    decides it from the same facts): it failed because its client went away mid-answer
    (CLIENT_CANCELLED: its bot died) while a preview showed it, was not generated again yet,
    nor delivered, nor handed to the bot as it is; not a scheduled turn (its scheduler runs
    those), its user's data and its personality not being deleted."""
    jobs, u, p = t.jobs.c, t.users.c, t.personalities.c
    return sa.and_(
        jobs.status == JobStatus.FAILED.value,
        jobs.error_reason == CLIENT_CANCELLED,
        sa.func.cardinality(jobs.preview_message_ids) > 0,
        jobs.preview_retried_at.is_(None),
        jobs.delivered_at.is_(None),
        sa.func.cardinality(jobs.delivered_message_ids) == 0,
        sa.not_(jobs.idempotency_key.startswith(TURN_KEY_PREFIX)),
        sa.exists().where(u.id == jobs.user_id, u.deletion_requested_at.is_(None)),
        sa.exists().where(p.id == jobs.personality_id, p.deletion_requested_at.is_(None)),
        ~sa.exists().where(g.bot_events.c.job_id == jobs.id),
    )


@functools.cache
def _unfinished_statement() -> sa.Select[tuple[object, ...]]:
    """unfinished_jobs' statement, built once (a sweep runs it every few seconds; building
    it cost more CPU than running it)."""
    jobs = t.jobs.c
    older_than = sa.bindparam("older_than_seconds", type_=sa.Float)
    before = sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than)
    handed = sa.exists().where(g.bot_events.c.job_id == jobs.id)
    return (
        sa.select(t.jobs, job_user_deleting().label("user_deleting"))
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

    async def unfinished_jobs(
        self, older_than_seconds: float, limit: int = 50
    ) -> list[UnfinishedJob]:
        """Jobs still showing a preview, undelivered, finished (streamed or failed) more than
        `older_than_seconds` ago, not handed to the bot yet (no `unfinished` event); each
        with whether its user's data is being deleted."""
        params = {"older_than_seconds": older_than_seconds, "row_limit": limit}
        async with self._autocommit.connect() as conn:
            return [
                UnfinishedJob(job_from_row(row._mapping), bool(row.user_deleting))
                for row in await conn.execute(_unfinished_statement(), params)
            ]

    async def claim_preview_retry(self, job_id: str, lease_seconds: float) -> bool:
        """Marks the job's answer as being generated again; False when another replica (or
        an earlier sweep) did already: it is generated again at most once. Leased for the
        retry that follows (store/retries.py), so GetJobStatus goes on reading it queued."""
        jobs = t.jobs.c
        stmt = (
            sa.update(t.jobs)
            .where(jobs.id == job_id, jobs.preview_retried_at.is_(None))
            .values(preview_retried_at=sa.func.now(), retry_until=lease_from_now(lease_seconds))
            .returning(jobs.id)
        )
        async with self._autocommit.connect() as conn:
            return (await conn.execute(stmt)).first() is not None
