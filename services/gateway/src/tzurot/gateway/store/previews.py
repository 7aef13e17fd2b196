"""Answer previews: the Discord messages a job's answer is being streamed as, and the jobs
whose bot died before confirming them (unfinished answers, tzurot.gateway.unfinished)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import Job, JobError, JobStatus
from tzurot.gateway.store.base import SqlBase, lease_from_now
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.gateway.store.rows import job_from_row

UNFINISHED_KIND = "unfinished"
CLIENT_CANCELLED = "CLIENT_CANCELLED"
"""A job's failure when its client went away mid-answer (a bot that died, among others)."""
GATEWAY_RESTARTING = "GATEWAY_RESTARTING"
"""A job's failure when its gateway stopped (SIGTERM) or was killed mid-answer (job_upkeep.py's
GATEWAY_STOPPED and ORPHANED)."""
RETRY_REQUESTED = "RETRY_REQUESTED"
"""A failed job made retryable for a retry (service.py's RETRY_REQUESTED) that has not run."""
MAX_REGENERATIONS = 3
"""How many times the sweep generates one answer again at most (each costs its user's key): a
gateway that keeps stopping mid-regeneration (a crash loop) does not generate it for ever."""
USER_DATA_DELETING = "USER_DATA_DELETING"
"""The refusal of a user whose data deletion is under way (gateway_core.user_data_deleting);
on an `unfinished` event, its answer is withheld for that reason."""
PERSONALITY_DELETED = "PERSONALITY_DELETED"
"""On an `unfinished` event: its answer is withheld because its personality is deleted (or
being deleted); the bot shows that instead (unfinished.py)."""
WITHHELD_REASONS = (USER_DATA_DELETING, PERSONALITY_DELETED)
"""An `unfinished` event with one of these reasons is shown withheld: the bot turns its
previews into why, and its acknowledgement delivers nothing."""


BLANK: dict[str, Any] = {
    "guild_id": "",
    "channel_id": "",
    "thread_id": "",
    "preview_message_ids": [],
    "message_ids": [],
}
"""What a handled `unfinished` event whose job is gone keeps of where it was and what it
showed: nothing (the row stays a tombstone for its dedup key)."""


class UnfinishedJob(NamedTuple):
    """A job whose bot died before confirming it, whether its user's data is being deleted
    (then it is not generated again, and the bot shows why instead of it), whether its
    personality's row is gone (a deletion that did not hand its answers over, before
    store/in_flight.py did: the bot shows why too, and no event may name it), and whether
    the sweep may have its answer generated again (`may_regenerate`, read with it)."""

    job: Job
    user_deleting: bool
    personality_gone: bool = False
    regenerable: bool = False


def job_user_deleting() -> sa.Exists:
    """The job's user's data is being deleted (her deletion is recorded, not finished)."""
    u = t.users.c
    return sa.exists().where(u.id == t.jobs.c.user_id, u.deletion_requested_at.is_not(None))


def why_withheld() -> sa.ColumnElement[str]:
    """Why the job's answer is withheld when its personality is deleted: USER_DATA_DELETING
    when its user's data is being deleted too (as any answer to her: her private
    personality goes with her data), else PERSONALITY_DELETED."""
    return sa.case((job_user_deleting(), USER_DATA_DELETING), else_=PERSONALITY_DELETED)


def _unfinished(of: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """The jobs `of` selects still showing a preview, undelivered, ended (streamed or failed):
    the answers a dead bot left that the sweep hands over (`unfinished_jobs`, whatever their
    age); or running again by the sweep (its bot died mid-answer): no bot shows anything
    when its run loses the job. Not a job running for a live bot: that bot shows the error
    its run ends with in its preview."""
    jobs = t.jobs.c
    regenerating = sa.and_(
        jobs.status == JobStatus.RUNNING.value, jobs.preview_retried_at.is_not(None)
    )
    return sa.and_(
        of,
        sa.func.cardinality(jobs.preview_message_ids) > 0,
        jobs.delivered_at.is_(None),
        sa.func.cardinality(jobs.delivered_message_ids) == 0,
        sa.or_(jobs.status.in_([JobStatus.STREAMED.value, JobStatus.FAILED.value]), regenerating),
    )


def no_longer_abandoned() -> sa.ColumnElement[bool]:
    """An `unfinished` event (in a statement on `bot_events`) whose job is not an abandoned
    answer any more: its client took it up again (a live bot asking for it again after a
    restart in the mesh cut it short, when the sweep met the failed job first: queued or
    running), it was delivered, or its live bot cleared its preview (it shows its error
    there). Finishing it would edit what that bot streams or showed, so it is deleted when
    claimed, never handed out; deleted, not dropped, so that an answer abandoned after all
    (its bot dying mid-retry) is handed over anew by the sweep."""
    e, jobs = g.bot_events.c, t.jobs.c
    live = [JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.DELIVERED.value]
    return sa.and_(
        e.kind == UNFINISHED_KIND,
        sa.exists()
        .where(
            jobs.id == e.job_id,
            sa.or_(jobs.status.in_(live), sa.func.cardinality(jobs.preview_message_ids) == 0),
        )
        .correlate(g.bot_events),
    )


def withhold_unfinished(
    of: sa.ColumnElement[bool], why: str | sa.ColumnElement[str], now: datetime | None = None
) -> sa.Insert:
    """Before the jobs `of` selects are deleted: each answer of theirs a dead bot left
    showing a preview is handed to the bot withheld (`why`, one of WITHHELD_REASONS or an
    expression choosing one per job; the preview's ids on the event, which needs no job
    then), or, handed already and not yet shown, withheld now. The bot shows why in those
    messages instead of leaving half an answer unexplained. Run in the transaction that
    deletes the jobs: a user's data deletion (all her jobs, USER_DATA_DELETING), and a
    personality's answers in flight (`why_withheld`: its deletion, or her data's when its
    user is being deleted too).

    `now`: the gateway's clock, when the event is due (claim_events is asked by that clock, as
    OutboxQueries.add_event queues by it); without it, the database's now(), which a database
    clock ahead of the gateway's makes late by the skew (and a test's ManualClock behind real
    time, never due)."""
    jobs, e = t.jobs.c, g.bot_events.c
    columns: tuple[str, ...] = (
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
        sa.literal(why) if isinstance(why, str) else why,
    ).where(_unfinished(of))
    if now is not None:
        columns += ("available_at",)
        rows = rows.add_columns(sa.literal(now, g.bot_events.c.available_at.type))
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
    events go with them, ON DELETE CASCADE: no turn or greeting of theirs is posted): their
    `unfinished` events no longer name theirs, so they stay. Those not shown yet are withheld
    by then (`withhold_unfinished`, in the same transaction): the bot still turns those
    previews into why, in no personality's voice and posting nothing new
    (bot/unfinished.py). Those shown already stay as the record that the job was handed
    over: the sweep hands over only a job without one, and would otherwise edit a preview
    explained long ago a second time. The personality's own deletion, and a user's data
    deletion, which deletes her private personalities."""
    e, p = g.bot_events.c, t.personalities.c
    return (
        sa.update(g.bot_events)
        .where(
            e.kind == UNFINISHED_KIND,
            e.personality_id.in_(sa.select(p.id).where(personalities)),
        )
        .values(personality_id=None)
    )


def reason_when_claimed() -> sa.ColumnElement[str]:
    """A bot event's reason as the claim hands it out (in a statement on `bot_events`): an
    `unfinished` one not withheld yet is withheld when its job's user's data is being deleted
    since it was queued (USER_DATA_DELETING) or else its personality is (PERSONALITY_DELETED):
    handed out even while its personality is being deleted, without it, the bot shows why in
    its previews. Any other event keeps its reason."""
    e, jobs, u, p = g.bot_events.c, t.jobs.c, t.users.c, t.personalities.c
    her_deletion = sa.exists().where(
        jobs.id == e.job_id, u.id == jobs.user_id, u.deletion_requested_at.is_not(None)
    )
    its_deletion = sa.exists().where(p.id == e.personality_id, p.deletion_requested_at.is_not(None))
    return sa.case(
        (sa.or_(e.kind != UNFINISHED_KIND, e.reason.in_(WITHHELD_REASONS)), e.reason),
        (her_deletion.correlate(g.bot_events), USER_DATA_DELETING),
        (its_deletion.correlate(g.bot_events), PERSONALITY_DELETED),
        else_=e.reason,
    )


def may_regenerate() -> sa.ColumnElement[bool]:
    """What of the job's own row lets the sweep generate its answer again (read as
    `UnfinishedJob.regenerable`), fewer than MAX_REGENERATIONS times so far: it failed
    because its bot went away mid-answer (CLIENT_CANCELLED) and was never claimed; or a
    regeneration of it was claimed already (counted) and its gateway cut it short
    (GATEWAY_RESTARTING): released by its stop, or failed after its claim (its gateway killed,
    its orphan failed; or its release lost). Strictly after: claiming it again sets a later
    time, so only one of replicas sweeping together claims it.

    A job that ended GATEWAY_RESTARTING never claimed for regeneration is not generated again:
    that is also how a job whose bot is still there ends (its gateway stopped or died, or
    another replica failed it ORPHANED while it streamed on), and that bot is asking for it
    again (bot/answering.py) or, its retries spent, told the user to try again, clearing its
    preview only later (NoteAnswerPreview, which may be late or lost). A regeneration runs
    with no client: no live bot shows it, none told anyone to retry."""
    jobs = t.jobs.c
    return sa.and_(
        jobs.status == JobStatus.FAILED.value,
        jobs.preview_regenerations < MAX_REGENERATIONS,
        sa.or_(
            sa.and_(jobs.preview_retried_at.is_(None), jobs.error_reason == CLIENT_CANCELLED),
            sa.and_(
                jobs.error_reason == GATEWAY_RESTARTING,
                jobs.preview_regenerations > 0,
                sa.or_(
                    jobs.preview_retried_at.is_(None),
                    jobs.finished_at > jobs.preview_retried_at,
                ),
            ),
        ),
    )


def regenerates(max_age_seconds: float) -> sa.ColumnElement[bool]:
    """Whether the unfinished-answer sweep will generate the job's answer again (unfinished.py
    decides it from the same facts): it failed because its bot went away mid-answer, or its
    gateway cut a regeneration of it short, while a preview showed it, less than
    `max_age_seconds` ago (the sweep's reach), is not being generated again nor was as often
    as it may be (`may_regenerate`), was not delivered, nor handed to the bot as it is; not a
    scheduled turn (its scheduler runs those), its user's data and its personality not being
    deleted."""
    jobs, u, p = t.jobs.c, t.users.c, t.personalities.c
    max_age = sa.bindparam("regenerate_max_age", max_age_seconds, type_=sa.Float)
    reach = sa.func.clock_timestamp() - sa.func.make_interval(0, 0, 0, 0, 0, 0, max_age)
    return sa.and_(
        may_regenerate(),
        jobs.finished_at > reach,
        sa.func.cardinality(jobs.preview_message_ids) > 0,
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
    newer_than = sa.bindparam("newer_than_seconds", type_=sa.Float)
    now = sa.func.clock_timestamp()
    before = now - sa.func.make_interval(0, 0, 0, 0, 0, 0, older_than)
    after = now - sa.func.make_interval(0, 0, 0, 0, 0, 0, newer_than)
    handed = sa.exists().where(g.bot_events.c.job_id == jobs.id)
    gone = ~sa.exists().where(t.personalities.c.id == jobs.personality_id)
    return (
        sa.select(
            t.jobs,
            job_user_deleting().label("user_deleting"),
            gone.label("personality_gone"),
            may_regenerate().label("regenerable"),
        )
        .where(
            sa.func.cardinality(jobs.preview_message_ids) > 0,
            jobs.delivered_at.is_(None),
            sa.func.cardinality(jobs.delivered_message_ids) == 0,
            jobs.status.in_([JobStatus.STREAMED.value, JobStatus.FAILED.value]),
            jobs.finished_at < before,
            jobs.finished_at > after,
            ~handed,
        )
        .order_by(jobs.finished_at)
        .limit(sa.bindparam("row_limit", type_=sa.Integer))
    )


class PreviewQueries(SqlBase):
    async def note_preview(
        self, job_id: str, message_ids: Sequence[str], reply_header: str = ""
    ) -> bool:
        """Records the preview of a job not yet delivered, and the reply header its first
        message starts with; False when there is no such job (or it was delivered already:
        nothing left to finish)."""
        jobs = t.jobs.c
        stmt = (
            sa.update(t.jobs)
            .where(jobs.id == job_id, jobs.status != JobStatus.DELIVERED.value)
            .values(preview_message_ids=list(message_ids), preview_header=reply_header)
            .returning(jobs.id)
        )
        async with self._autocommit.connect() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def unfinished_jobs(
        self, older_than_seconds: float, newer_than_seconds: float, limit: int = 50
    ) -> list[UnfinishedJob]:
        """Jobs still showing a preview, undelivered, finished (streamed or failed) more than
        `older_than_seconds` and less than `newer_than_seconds` ago, not handed to the bot yet
        (no `unfinished` event); each with whether its user's data is being deleted and
        whether its personality is gone."""
        params = {
            "older_than_seconds": older_than_seconds,
            "newer_than_seconds": newer_than_seconds,
            "row_limit": limit,
        }
        async with self._autocommit.connect() as conn:
            return [
                UnfinishedJob(
                    job_from_row(row._mapping),
                    bool(row.user_deleting),
                    bool(row.personality_gone),
                    bool(row.regenerable),
                )
                for row in await conn.execute(_unfinished_statement(), params)
            ]

    async def claim_preview_retry(self, job_id: str, lease_seconds: float) -> int | None:
        """Marks the job's answer as being generated again, and counts it; the count (this
        regeneration's number), or None when it may not be (`may_regenerate`): another
        replica (or an earlier sweep) claimed it already, or it was generated again
        MAX_REGENERATIONS times. Leased for the retry that follows (store/retries.py), so
        GetJobStatus goes on reading it queued."""
        jobs = t.jobs.c
        stmt = (
            sa.update(t.jobs)
            .where(jobs.id == job_id, may_regenerate())
            .values(
                preview_retried_at=sa.func.now(),
                preview_regenerations=jobs.preview_regenerations + 1,
                retry_until=lease_from_now(lease_seconds),
            )
            .returning(jobs.preview_regenerations)
        )
        async with self._autocommit.connect() as conn:
            counted = (await conn.execute(stmt)).scalar_one_or_none()
        return None if counted is None else int(counted)

    async def release_preview_retry(
        self, job_id: str, regeneration: int, stopped: JobError
    ) -> bool:
        """The regeneration `regeneration` (claim_preview_retry's count) was cut short by its
        gateway's stop (`stopped`, GATEWAY_RESTARTING): unclaimed but still counted, so the
        next sweep generates the answer again (MAX_REGENERATIONS times at most). Whatever
        the job's status: the cancelled run's own failure write (GATEWAY_RESTARTING, which
        `may_regenerate` accepts) may land before or after this. A retry it asked for that
        never ran (failed RETRY_REQUESTED) fails `stopped` instead: the answer was cut off by
        its gateway, not refused. Not another claim's (a later replica's, once this one's run
        had ended): whether it released this one."""
        jobs = t.jobs.c
        never_ran = sa.and_(
            jobs.status == JobStatus.FAILED.value, jobs.error_reason == RETRY_REQUESTED
        )

        def unless_ran(value: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
            return sa.case((never_ran, value), else_=column)

        stmt = (
            sa.update(t.jobs)
            .where(jobs.id == job_id, jobs.preview_regenerations == regeneration)
            .values(
                preview_retried_at=None,
                retry_until=None,
                error_code=unless_ran(stopped.code, jobs.error_code),
                error_reason=unless_ran(stopped.reason, jobs.error_reason),
                error_message=unless_ran(stopped.message, jobs.error_message),
            )
            .returning(jobs.id)
        )
        async with self._autocommit.connect() as conn:
            return (await conn.execute(stmt)).first() is not None
