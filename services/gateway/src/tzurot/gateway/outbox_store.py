"""SQL of the bot event outbox (`core.bot_events`): queue, claim for a lease, renew the lease
while a subscriber holds it, release, defer, acknowledge; and a posted greeting's history,
pending from its acknowledgement until memory has stored it (event_acks.py).

An event is claimed at most MAX_EVENT_ATTEMPTS times: one that has come back that often (a
failure the bot keeps leaving for later, a bot that crashes on it) is dropped as
TOO_MANY_ATTEMPTS and logged, instead of returning forever. One whose personality is being
deleted (`deletion_requested_at`: it is found by no lookup and answers nobody) is never handed
out: the claim drops it as PERSONALITY_DELETING, in the same statement; once the deletion
finishes, the personality's row takes its events with it (ON DELETE CASCADE). Except a
half-shown answer (unfinished.py): handed out all the same, withheld (its personality's
deletion, or its user's data's, recorded as its reason by the claim), and kept once the
personality is gone (naming none, store/previews.keep_withheld), so the bot can still show
why in its previews.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.clock import Clock
from tzurot.gateway.domain import Location
from tzurot.gateway.freewill_drops import turn_dropped
from tzurot.gateway.store.lorebooks import record_greeting
from tzurot.gateway.store.previews import (
    BLANK,
    UNFINISHED_KIND,
    no_longer_abandoned,
    reason_when_claimed,
)

log = structlog.get_logger(__name__)

MAX_EVENT_ATTEMPTS = 10
"""Claims of one event before it is dropped (TOO_MANY_ATTEMPTS) rather than claimed again."""
TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
PERSONALITY_DELETING = "PERSONALITY_DELETING"
"""Dropped when claimed: the event's personality is being deleted (nothing may post as it)."""
HISTORY_PENDING, HISTORY_STORED, HISTORY_REFUSED = "pending", "stored", "refused"
"""`history_status`: a posted greeting's turn waits for memory, is stored, or never will be."""


@dataclass(frozen=True)
class BotEventRow:
    id: str
    kind: str
    location: Location
    personality_id: str | None
    payer_user_id: str | None
    reason: str
    round_id: str
    depth: int
    reply_to_message_id: str
    directive: str
    notice_kind: str
    text: str
    delivered: bool
    available_at: datetime
    created_at: datetime
    job_id: str | None = None
    attempts: int = 0
    claimed_until: datetime | None = None
    dropped_reason: str = ""
    message_ids: tuple[str, ...] = ()
    history_status: str = ""
    preview_message_ids: tuple[str, ...] = ()


def _event(m: sa.RowMapping) -> BotEventRow:
    return BotEventRow(
        id=str(m["id"]),
        kind=m["kind"],
        location=Location(m["guild_id"], m["channel_id"], m["thread_id"], m["nsfw_channel"]),
        personality_id=None if m["personality_id"] is None else str(m["personality_id"]),
        payer_user_id=None if m["payer_user_id"] is None else str(m["payer_user_id"]),
        reason=m["reason"],
        round_id=m["round_id"],
        depth=m["depth"],
        reply_to_message_id=m["reply_to_message_id"],
        directive=m["directive"],
        notice_kind=m["notice_kind"],
        text=m["text"],
        delivered=m["delivered_at"] is not None,
        available_at=m["available_at"],
        created_at=m["created_at"],
        job_id=None if m["job_id"] is None else str(m["job_id"]),
        attempts=m["attempts"],
        claimed_until=m["claimed_until"],
        dropped_reason=m["dropped_reason"],
        message_ids=tuple(m["message_ids"]),
        history_status=m["history_status"],
        preview_message_ids=tuple(m["preview_message_ids"]),
    )


def _by_lease(held: Mapping[str, datetime]) -> dict[datetime, list[str]]:
    by_lease: dict[datetime, list[str]] = {}
    for event_id, until in held.items():
        by_lease.setdefault(until, []).append(event_id)
    return by_lease


class OutboxQueries:
    """The outbox's statements (GroupStore has them)."""

    engine: AsyncEngine
    _autocommit: AsyncEngine
    clock: Clock
    """The gateway's clock: an event is due (`available_at`, unless the caller sets it) by the
    clock `claim_events` is asked with, not by the database's, so a database clock ahead of
    the gateway's cannot hold events back (nor a test's ManualClock leave them unclaimed)."""

    async def add_event(
        self, values: dict[str, Any], conn: AsyncConnection | None = None
    ) -> str | None:
        """Queues an event, due now by `clock` unless `values` say when; None when its
        dedup_key was queued already (once-only)."""
        stmt = (
            insert(g.bot_events)
            .values(**{"available_at": self.clock.now(), **values})
            .on_conflict_do_nothing(index_elements=[g.bot_events.c.dedup_key])
            .returning(g.bot_events.c.id)
        )
        if conn is not None:
            added = await conn.scalar(stmt)
        else:
            async with self.engine.begin() as own:
                added = await own.scalar(stmt)
        return None if added is None else str(added)

    async def claim_events(
        self, now: datetime, lease: timedelta, shard_id: int, shard_count: int, limit: int = 20
    ) -> list[BotEventRow]:
        """Pending events of the shard that are due and not leased to another subscriber.

        FOR UPDATE SKIP LOCKED: two subscribers never claim one event at once; an event whose
        lease ran out (its subscriber went away without releasing it) is claimed again, up to
        MAX_EVENT_ATTEMPTS claims; past them it is dropped (TOO_MANY_ATTEMPTS), in the same
        transaction. One whose personality is being deleted is dropped (PERSONALITY_DELETING)
        by that same statement, never handed out; but an answer a dead bot left half shown
        is handed out withheld (`reason_when_claimed`), without its personality. An
        `unfinished` event whose answer is not abandoned any more (`no_longer_abandoned`: its
        live bot took it up again) is deleted, not handed out.
        """
        e, p = g.bot_events.c, t.personalities.c
        deleting = sa.and_(
            sa.exists()
            .where(p.id == e.personality_id, p.deletion_requested_at.is_not(None))
            .correlate(g.bot_events),
            # The bot shows why in the preview a dead bot left half an answer in.
            e.kind != UNFINISHED_KIND,
        )
        due = (
            sa.select(e.id)
            .where(
                e.delivered_at.is_(None),
                e.available_at <= now,
                sa.or_(e.claimed_until.is_(None), e.claimed_until < now),
            )
            .order_by(e.available_at, e.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if shard_count > 1:
            shard = sa.case(
                (e.guild_id == "", 0),
                # Discord's rule: shard = (guild_id >> 22) % shard_count.
                else_=sa.func.mod(
                    sa.cast(e.guild_id, sa.BigInteger).op(">>")(sa.literal(22, sa.Integer)),
                    shard_count,
                ),
            )
            due = due.where(shard == shard_id)
        given_up = sa.or_(e.attempts >= MAX_EVENT_ATTEMPTS, deleting)
        spent = (
            sa.update(g.bot_events)
            .where(e.id.in_(due.where(given_up).scalar_subquery()))
            .values(
                delivered_at=now,
                claimed_until=None,
                dropped_reason=sa.case((deleting, PERSONALITY_DELETING), else_=TOO_MANY_ATTEMPTS),
            )
            .returning(*g.bot_events.c)
        )
        stmt = (
            sa.update(g.bot_events)
            .where(e.id.in_(due.where(sa.not_(given_up)).scalar_subquery()))
            .values(
                claimed_until=now + lease, attempts=e.attempts + 1, reason=reason_when_claimed()
            )
            .returning(*g.bot_events.c)
        )
        stale = (
            sa.delete(g.bot_events)
            .where(e.id.in_(due.where(no_longer_abandoned()).scalar_subquery()))
            .returning(e.id, e.job_id)
        )
        async with self.engine.begin() as conn:
            for event_id, job_id in (await conn.execute(stale)).all():
                log.info("events.unfinished_taken_up", event_id=str(event_id), job_id=str(job_id))
            for row in (await conn.execute(spent)).all():
                m = row._mapping
                dropped = m["dropped_reason"]
                if dropped == PERSONALITY_DELETING:
                    log.info("events.dropped", event_id=str(m["id"]), kind=m["kind"], why=dropped)
                else:
                    log.warning(
                        "events.given_up",
                        event_id=str(m["id"]),
                        kind=m["kind"],
                        reason=m["reason"] or m["notice_kind"],
                        attempts=m["attempts"],
                    )
                await turn_dropped(conn, m, dropped)
            rows = (await conn.execute(stmt)).all()
        events = [_event(r._mapping) for r in rows]
        return sorted(events, key=lambda ev: (ev.available_at, ev.created_at))

    async def renew_events(self, held: Mapping[str, datetime], until: datetime) -> set[str]:
        """Extends to `until` the claims a live subscriber still holds (`held`: id → the lease
        end it holds it with); the ids renewed. An event acknowledged, deferred, released or
        claimed by someone else since (a different lease end) is not renewed."""
        e = g.bot_events.c
        renewed: set[str] = set()
        async with self.engine.begin() as conn:
            for end, ids in _by_lease(held).items():
                rows = await conn.execute(
                    sa.update(g.bot_events)
                    .where(e.id.in_(ids), e.claimed_until == end, e.delivered_at.is_(None))
                    .values(claimed_until=until)
                    .returning(e.id)
                )
                renewed.update(str(i) for i in rows.scalars())
        return renewed

    async def release_events(self, held: Mapping[str, datetime]) -> int:
        """Gives back claims a subscriber no longer holds (its stream ended), unless
        acknowledged meanwhile or claimed since by someone else (a different lease end)."""
        e = g.bot_events.c
        released = 0
        async with self.engine.begin() as conn:
            for until, ids in _by_lease(held).items():
                result = await conn.execute(
                    sa.update(g.bot_events)
                    .where(e.id.in_(ids), e.claimed_until == until, e.delivered_at.is_(None))
                    .values(claimed_until=None)
                )
                released += result.rowcount
        return released

    async def defer_event(self, event_id: str, until: datetime) -> bool:
        """The bot left the event for later: claimed by nobody until `until`. Its subscriber
        no longer renews it: the lease end it holds it with is gone (never the same value,
        even when `until` falls on it)."""
        e = g.bot_events.c
        later = sa.func.greatest(until, e.claimed_until + timedelta(microseconds=1))
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(g.bot_events)
                .where(e.id == event_id, e.delivered_at.is_(None))
                .values(claimed_until=later)
            )
        return bool(result.rowcount)

    async def withhold_unfinished(self, event_id: str, reason: str) -> None:
        """An `unfinished` event handed to the bot without its answer (`reason`: why): its
        acknowledgement then delivers nothing (event_acks.py)."""
        e = g.bot_events.c
        async with self._autocommit.connect() as conn:
            await conn.execute(
                sa.update(g.bot_events).where(e.id == event_id).values(reason=reason)
            )

    async def drop_pending_unfinished(self, job_id: str) -> int:
        """Deletes the `unfinished` events of a job taken up again by its client (the same
        request sent again: a live bot asking for an answer a restart cut short) that the bot
        has not acknowledged: queued while it waited, they no longer apply, and left queued
        they would stop the sweep from handing the answer over (or generating it again)
        should that run be abandoned too. How many it deleted."""
        e = g.bot_events.c
        async with self._autocommit.connect() as conn:
            result = await conn.execute(
                sa.delete(g.bot_events).where(
                    e.kind == UNFINISHED_KIND, e.job_id == job_id, e.delivered_at.is_(None)
                )
            )
        return int(result.rowcount)

    async def forget_unfinished(self, event_id: str) -> None:
        """Blanks a handled `unfinished` event whose job is gone (with its user's data, or as
        a deleted personality's answer in flight): where it was and what it showed (`BLANK`).
        The row stays, a tombstone: its dedup key still stops a sweep that read the job
        before it went from queueing it again, and an acknowledgement sent again is still a
        no-op."""
        e = g.bot_events.c
        async with self._autocommit.connect() as conn:
            await conn.execute(
                sa.update(g.bot_events)
                .where(
                    e.id == event_id,
                    e.kind == UNFINISHED_KIND,
                    e.delivered_at.is_not(None),
                    ~sa.exists().where(t.jobs.c.id == e.job_id),
                )
                .values(**BLANK)
            )

    async def event(self, event_id: str) -> BotEventRow | None:
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(sa.select(g.bot_events).where(g.bot_events.c.id == event_id))
            ).one_or_none()
        return None if row is None else _event(row._mapping)

    async def ack_event(
        self,
        event_id: str,
        message_ids: Sequence[str],
        dropped_reason: str,
        now: datetime,
        *,
        history_pending: bool = False,
    ) -> bool:
        """Acknowledged (posted, or dropped with a reason): never sent again. A dropped
        free-will turn has its consequences in the same transaction (freewill_drops).
        `history_pending` (a posted greeting): its history is noted as still to be stored by
        the same statement, so no stop between the two can lose it."""
        e = g.bot_events.c
        values: dict[str, Any] = {
            "delivered_at": now,
            "message_ids": list(message_ids),
            "dropped_reason": dropped_reason,
        }
        if history_pending:
            values["history_status"] = HISTORY_PENDING
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(g.bot_events)
                    .where(e.id == event_id, e.delivered_at.is_(None))
                    .values(**values)
                    .returning(*g.bot_events.c)
                )
            ).one_or_none()
            if row is not None and dropped_reason and not message_ids:
                await turn_dropped(conn, row._mapping, dropped_reason)
        return row is not None

    async def events_pending_history(
        self, limit: int = 100, after: BotEventRow | None = None
    ) -> list[BotEventRow]:
        """Posted greetings whose history is still to be stored, oldest first, from after the
        event `after` (the last of the previous page)."""
        e = g.bot_events.c
        stmt = sa.select(g.bot_events).where(e.history_status == HISTORY_PENDING)
        if after is not None:
            stmt = stmt.where(sa.tuple_(e.created_at, e.id) > (after.created_at, after.id))
        stmt = stmt.order_by(e.created_at, e.id).limit(limit)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_event(r._mapping) for r in rows]

    async def greeting_stored(
        self, event_id: str, conversation_id: str, personality_id: str, index: int
    ) -> bool:
        """Memory stored the greeting's turn: its history is `stored`, and the conversation's
        lore state records greeting `index`, in one transaction and only by whoever finds it
        still pending (two replicas sweeping it record it once). False: not pending any more."""
        e = g.bot_events.c
        async with self.engine.begin() as conn:
            marked = await conn.scalar(
                sa.update(g.bot_events)
                .where(e.id == event_id, e.history_status == HISTORY_PENDING)
                .values(history_status=HISTORY_STORED)
                .returning(e.id)
            )
            if marked is None:
                return False
            await conn.execute(record_greeting(conversation_id, personality_id, index))
        return True

    async def refuse_greeting_history(self, event_id: str) -> None:
        """The greeting's history will never be stored (memory refused it for good, or its
        personality is gone): `events_pending_history` no longer returns it."""
        e = g.bot_events.c
        async with self._autocommit.connect() as conn:
            await conn.execute(
                sa.update(g.bot_events)
                .where(e.id == event_id, e.history_status == HISTORY_PENDING)
                .values(history_status=HISTORY_REFUSED)
            )
