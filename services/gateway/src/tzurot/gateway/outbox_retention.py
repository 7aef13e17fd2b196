"""Retention of the bot event outbox (`core.bot_events`): an acknowledged event is deleted once
it was acknowledged longer ago than the retention (TZUROT_BOT_EVENTS_RETENTION_DAYS), unless
its row is still needed. Without this the outbox grew for good.

Once the bot has acknowledged an event (or it was dropped), the event is never sent again;
its row matters only while it is read, or while its dedup key can still stop the same event
from being queued a second time. So these stay:

- a release note (`release:<version>:<channel>`): for good. A gateway starting with a release
  a channel's subscription is not at (a roll back, then forward again) would announce it
  again (notifications.py).
- an `unfinished` hand-over whose job is still there and undelivered (the bot showed a failure
  notice, or withheld the answer while its user's data is being deleted): as long as that
  job. The sweep hands over only a job with no event (store/previews.py), and that job, run
  again (a resend, an operator's retry), would be handed over a second time. Once its job is
  delivered (never swept again) or gone (the blanked tombstone: its dedup key only stops a
  sweep that read the job before it went, minutes at most) it goes with the others; the
  retention is longer than TZUROT_UNFINISHED_MAX_AGE_SECONDS and a margin (config.py).
- a greeting: while its personality is activated in the channel (its dedup key names the
  activation: activating it again there queues no second greeting), and while its history is
  pending (event_acks.py stores it from the row).

The rest goes: an announcement's key is random; a chain turn's (round and depth) is queued
once, when the round's last answer is delivered; a free-will turn's names a local day long
past (the retention is at least three days: a guild's timezone moved from UTC+14 to UTC-12
has one local day span 50 hours); a scheduled turn's job is delivered, or the turn dropped,
when its event is acknowledged. An undelivered event is never deleted, however old.

One statement a batch walks acknowledged events oldest first through the partial index
`bot_events_delivered_idx` (migration 0023; release notes are not in it) from where the last
batch stopped, and deletes the deletable among them: the rows kept are read once a pass, not
once a batch. It locks the rows it walks and passes over those another transaction holds (a
user's data deletion, which blanks or deletes hers): it waits for no lock, so it cannot
deadlock with one; a row passed over goes at the next pass. A pass runs every PASS_SECONDS,
BATCHES_PER_SWEEP batches a sweep until done (job_upkeep.run_sweeps: bounded there,
cancelled when the gateway stops; a batch cut short is rolled back whole). Replicas may
sweep together: a row is deleted once, by one of them (each passes over the rows the
other's batch holds).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.clock import Clock
from tzurot.gateway.greetings import KIND as GREETING_KIND
from tzurot.gateway.notifications import RELEASE_NOTICE
from tzurot.gateway.outbox_store import HISTORY_PENDING
from tzurot.gateway.store.previews import UNFINISHED_KIND

log = structlog.get_logger(__name__)

PASS_SECONDS = 3600.0
"""How often each replica walks the whole outbox for events past the retention."""
BATCH = 500
"""Acknowledged events one statement walks (and deletes, those it may)."""
BATCHES_PER_SWEEP = 10
"""Batches one sweep runs at most; a pass left unfinished goes on at the next sweep."""


@dataclass(frozen=True)
class Position:
    """Where a pass is: the last acknowledged event walked (its acknowledgement, its id)."""

    delivered_at: datetime
    id: str


START = Position(datetime.min.replace(tzinfo=UTC), "00000000-0000-0000-0000-000000000000")


@dataclass(frozen=True)
class Batch:
    dropped: int
    walked: int
    last: Position | None


def deletable() -> sa.ColumnElement[bool]:
    """An acknowledged event whose row nothing needs any more (see the module); not asked of
    release notes, which the walk never reaches."""
    e, jobs, a = g.bot_events.c, t.jobs.c, t.channel_activations.c
    job_undelivered = (
        sa.exists().where(jobs.id == e.job_id, jobs.delivered_at.is_(None)).correlate(g.bot_events)
    )
    activated = (
        sa.exists()
        .where(a.channel_id == e.channel_id, a.personality_id == e.personality_id)
        .correlate(g.bot_events)
    )
    return sa.and_(
        e.history_status != HISTORY_PENDING,
        sa.not_(sa.and_(e.kind == UNFINISHED_KIND, job_undelivered)),
        sa.not_(sa.and_(e.kind == GREETING_KIND, activated)),
    )


@functools.cache
def drop_statement() -> sa.Select[int, int, datetime | None, str | None]:
    """One batch: walks at most `batch` events acknowledged before `before`, after
    (`after_at`, `after_id`), oldest first; deletes the deletable. Built once."""
    e = g.bot_events.c
    before = sa.bindparam("before", type_=sa.DateTime(timezone=True))
    after = sa.tuple_(
        sa.bindparam("after_at", type_=sa.DateTime(timezone=True)),
        sa.bindparam("after_id", type_=UUID(as_uuid=False)),
    )
    walked = (
        sa.select(e.id, e.delivered_at)
        .where(
            # The index's own predicate, as literals: the planner proves it from these.
            e.delivered_at.is_not(None),
            e.notice_kind != sa.literal_column(f"'{RELEASE_NOTICE}'"),
            e.delivered_at < before,
            sa.tuple_(e.delivered_at, e.id) > after,
        )
        .order_by(e.delivered_at, e.id)
        .limit(sa.bindparam("batch", type_=sa.Integer))
        # Locks what it walks, passing over rows another transaction holds (a user's data
        # deletion blanking or deleting her events): it never waits for one, so never
        # deadlocks with one locking them in another order; a row passed over goes next pass.
        .with_for_update(skip_locked=True)
        .cte("walked")
    )
    w = walked.c
    dropped = (
        sa.delete(g.bot_events)
        .where(e.id.in_(sa.select(w.id)), deletable())
        .returning(e.id)
        .cte("dropped")
    )
    last = sa.select(w.delivered_at, w.id).order_by(w.delivered_at.desc(), w.id.desc()).limit(1)
    return sa.select(
        sa.select(sa.func.count()).select_from(dropped).scalar_subquery(),
        sa.select(sa.func.count()).select_from(walked).scalar_subquery(),
        last.with_only_columns(w.delivered_at).scalar_subquery(),
        last.with_only_columns(w.id).scalar_subquery(),
    )


async def drop_old_events(
    engine: AsyncEngine, before: datetime, after: Position = START, batch: int = BATCH
) -> Batch:
    """One batch (`drop_statement`), in its own transaction."""
    params = {
        "before": before,
        "after_at": after.delivered_at,
        "after_id": after.id,
        "batch": batch,
    }
    async with engine.begin() as conn:
        dropped, walked, last_at, last_id = (await conn.execute(drop_statement(), params)).one()
    last = None if last_at is None else Position(last_at, str(last_id))
    return Batch(dropped, walked, last)


class OutboxRetention:
    """Each replica's passes over the outbox (job_upkeep.run_sweeps runs `drop_old_bot_events`
    with its other sweeps)."""

    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        retention_seconds: float,
        *,
        pass_seconds: float = PASS_SECONDS,
        batch: int = BATCH,
        batches_per_sweep: int = BATCHES_PER_SWEEP,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._retention = timedelta(seconds=retention_seconds)
        self._pass_seconds = pass_seconds
        self._batch = batch
        self._batches = batches_per_sweep
        self._at: Position | None = None
        """Where the pass under way stopped; None: no pass under way."""
        self._next_pass = 0.0
        """When (the loop's clock) the next pass starts: at once, at start."""

    async def drop_old_bot_events(self) -> int:
        """Goes on with the pass under way (or starts one, when due) for at most
        `batches_per_sweep` batches; how many events it deleted. The retention is counted on
        the gateway's clock, the one that acknowledges events (a test's moves only when told)."""
        now = asyncio.get_running_loop().time()
        if self._at is None:
            if now < self._next_pass:
                return 0
            self._at = START
        before = self._clock.now() - self._retention
        dropped = 0
        try:
            for _ in range(self._batches):
                batch = await drop_old_events(self._engine, before, self._at, self._batch)
                dropped += batch.dropped
                if batch.last is None or batch.walked < self._batch:  # past the retention's end
                    self._at = None
                    self._next_pass = now + self._pass_seconds
                    break
                self._at = batch.last
        finally:  # a batch cut short (stopped, Postgres away) deleted nothing
            if dropped:
                log.info("events.retention_dropped", dropped=dropped, done=self._at is None)
        return dropped
