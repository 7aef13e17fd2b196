"""SQL of group channels: activations, talkativeness, rounds and chains (the bot event
outbox's: outbox_store.py)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.clock import Clock, SystemClock
from tzurot.gateway.domain import ChannelActivation, GroupJob, Location, User
from tzurot.gateway.outbox_store import BotEventRow, OutboxQueries
from tzurot.gateway.store import LIVE_PERSONALITY, PERSONALITY_COLUMNS, personality_from_row

DEFAULT_TALKATIVENESS = 0.5

__all__ = [
    "ActiveMember",
    "BotEventRow",
    "ChannelState",
    "GroupJob",
    "GroupStore",
    "OwedFollowUps",
]


@dataclass(frozen=True)
class ActiveMember:
    activation: ChannelActivation
    talkativeness: float


@dataclass(frozen=True)
class ChannelState:
    conversation_id: str
    location: Location
    round_id: str
    round_starter_user_id: str | None
    round_speakers: tuple[str, ...]
    last_speaker_id: str


@dataclass(frozen=True)
class OwedFollowUps:
    """What a sweep of owed group follow-ups found: the jobs it claimed (to run), and those
    it dropped (delivered too long ago to run again)."""

    claimed: tuple[str, ...]
    dropped: tuple[str, ...]


@functools.cache
def _claim_follow_ups_statement() -> sa.CompoundSelect[Any]:
    """claim_owed_follow_ups' statement, built once (every replica runs it every sweep)."""
    f, jobs = g.group_follow_ups.c, t.jobs.c
    since = sa.func.now() - sa.bindparam("within", type_=sa.Interval)
    stale = (
        sa.delete(g.group_follow_ups)
        .where(jobs.id == f.job_id, jobs.delivered_at <= since)
        .returning(f.job_id)
        .cte("stale")
    )
    due = (
        sa.select(f.job_id)
        .join(t.jobs, jobs.id == f.job_id)
        .where(f.due_at <= sa.func.now(), jobs.delivered_at > since)
        .order_by(f.due_at, f.job_id)
        .limit(sa.bindparam("row_limit", type_=sa.Integer))
        .with_for_update(of=g.group_follow_ups, skip_locked=True)
    )
    lease = sa.func.make_interval(0, 0, 0, 0, 0, 0, sa.bindparam("lease_seconds", type_=sa.Float))
    claimed = (
        sa.update(g.group_follow_ups)
        .where(f.job_id.in_(due.scalar_subquery()))
        .values(due_at=sa.func.now() + lease)
        .returning(f.job_id)
        .cte("claimed")
    )
    # Disjoint: a row is stale or may be claimed, by the one now() of the statement.
    return sa.union_all(
        sa.select(claimed.c.job_id, sa.false().label("stale")),
        sa.select(stale.c.job_id, sa.true().label("stale")),
    )


def location_values(where: Location) -> dict[str, Any]:
    """A Location as bot_events / freewill columns (channel_id is the parent channel)."""
    return {
        "guild_id": where.guild_id,
        "channel_id": where.channel_id,
        "thread_id": where.thread_id,
        "nsfw_channel": where.nsfw_channel,
    }


class GroupStore(OutboxQueries):
    """Group channels' SQL, and the bot event outbox's (outbox_store.py)."""

    def __init__(self, engine: AsyncEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock or SystemClock()
        self._autocommit = autocommit(engine)

    # ---- activations ----

    async def personal_aliases(self, user_id: str) -> dict[str, str]:
        """The user's own aliases: normalized alias -> personality id."""
        pa = t.personal_aliases.c
        stmt = sa.select(pa.alias, pa.personality_id).where(pa.user_id == user_id)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {row.alias: str(row.personality_id) for row in rows}

    async def members(self, channel_id: str) -> list[ActiveMember]:
        """Personalities activated in the channel, oldest activation first."""
        a = t.channel_activations.c
        tr = g.personality_traits.c
        stmt = (
            sa.select(
                a.guild_id,
                a.channel_id,
                a.activated_by_user_id,
                a.activated_at,
                sa.func.coalesce(tr.talkativeness, DEFAULT_TALKATIVENESS).label("talkativeness"),
                *PERSONALITY_COLUMNS,
            )
            .join(t.personalities, t.personalities.c.id == a.personality_id)
            .outerjoin(g.personality_traits, tr.personality_id == a.personality_id)
            .where(a.channel_id == channel_id, LIVE_PERSONALITY)
            .order_by(a.activated_at, t.personalities.c.slug)
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            ActiveMember(
                ChannelActivation(
                    guild_id=r._mapping["guild_id"],
                    channel_id=r._mapping["channel_id"],
                    personality=personality_from_row(r._mapping),
                    activated_by_user_id=None
                    if r._mapping["activated_by_user_id"] is None
                    else str(r._mapping["activated_by_user_id"]),
                    activated_at=r._mapping["activated_at"],
                ),
                float(r._mapping["talkativeness"]),
            )
            for r in rows
        ]

    async def talkativeness(self, personality_id: str) -> float:
        async with self._autocommit.connect() as conn:
            value = await conn.scalar(
                sa.select(g.personality_traits.c.talkativeness).where(
                    g.personality_traits.c.personality_id == personality_id
                )
            )
        return DEFAULT_TALKATIVENESS if value is None else float(value)

    # ---- rounds and chains ----

    async def start_round(
        self,
        where: Location,
        round_id: str,
        starter_user_id: str,
        speakers: Sequence[str],
        now: datetime,
    ) -> None:
        """A human spoke: a new round (any pending chain is now stale)."""
        conversation_id = where.conversation_id
        values = {
            **location_values(where),
            "round_id": round_id,
            "round_starter_user_id": starter_user_id,
            "round_speakers": list(speakers),
            "last_human_at": now,
            "updated_at": now,
        }
        stmt = insert(g.channel_state).values(conversation_id=conversation_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[g.channel_state.c.conversation_id], set_=values
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

    async def note_human(self, where: Location, now: datetime, *, interrupt: bool) -> None:
        """A human message outside a planned round: last_human_at, and the chain stops."""
        conversation_id = where.conversation_id
        values: dict[str, Any] = {**location_values(where), "last_human_at": now, "updated_at": now}
        if interrupt:
            values["round_id"] = sa.func.gen_random_uuid().cast(sa.Text)
            values["round_speakers"] = []
        stmt = insert(g.channel_state).values(conversation_id=conversation_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[g.channel_state.c.conversation_id], set_=values
        )
        async with self._autocommit.connect() as conn:
            await conn.execute(stmt)

    async def state(self, conversation_id: str) -> ChannelState | None:
        c = g.channel_state.c
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(g.channel_state).where(c.conversation_id == conversation_id)
                )
            ).one_or_none()
        if row is None:
            return None
        m = row._mapping
        return ChannelState(
            conversation_id=m["conversation_id"],
            location=Location(m["guild_id"], m["channel_id"], m["thread_id"], m["nsfw_channel"]),
            round_id=m["round_id"],
            round_starter_user_id=None
            if m["round_starter_user_id"] is None
            else str(m["round_starter_user_id"]),
            round_speakers=tuple(m["round_speakers"]),
            last_speaker_id=m["last_speaker_id"],
        )

    async def last_human_at(self, conversation_id: str) -> datetime | None:
        async with self._autocommit.connect() as conn:
            return await conn.scalar(
                sa.select(g.channel_state.c.last_human_at).where(
                    g.channel_state.c.conversation_id == conversation_id
                )
            )

    async def set_last_speaker(self, conversation_id: str, personality_id: str) -> None:
        c = g.channel_state.c
        async with self._autocommit.connect() as conn:
            await conn.execute(
                sa.update(g.channel_state)
                .where(c.conversation_id == conversation_id)
                .values(last_speaker_id=personality_id)
            )

    async def delivered_group_job(self, job_id: str, within: timedelta) -> GroupJob | None:
        """The group round of job `job_id`, if it is delivered and was less than `within` ago
        by the database's clock (the one that stamped `delivered_at`); else None (not in a
        round, not delivered, or delivered longer ago)."""
        gj, jobs = g.group_jobs.c, t.jobs.c
        stmt = (
            sa.select(gj.job_id, gj.conversation_id, gj.round_id, gj.depth, gj.last_in_round)
            .join(t.jobs, jobs.id == gj.job_id)
            .where(
                gj.job_id == job_id,
                jobs.delivered_at > sa.func.now() - sa.literal(within, sa.Interval),
            )
        )
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        return GroupJob(
            str(row.job_id), row.conversation_id, row.round_id, row.depth, row.last_in_round
        )

    async def claim_owed_follow_ups(
        self, within: timedelta, lease_seconds: float, limit: int
    ) -> OwedFollowUps:
        """Group follow-ups owed (`group_follow_ups`) and due: their delivering gateway's
        hold, or another sweep's lease, has run out. Those whose job was delivered less than
        `within` ago (the database's clock, as `delivered_group_job`) are claimed, at most
        `limit`, for `lease_seconds`: FOR UPDATE SKIP LOCKED, and the lease re-checked once a
        row lock is had, so two replicas sweeping at once never claim one. Those delivered
        longer ago are deleted, not run: a repeat that late may find its chain event gone
        (the outbox's retention) and queue the reply a second time. One statement."""
        params = {"within": within, "lease_seconds": lease_seconds, "row_limit": limit}
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            rows = (await conn.execute(_claim_follow_ups_statement(), params)).all()
        return OwedFollowUps(
            tuple(str(r.job_id) for r in rows if not r.stale),
            tuple(str(r.job_id) for r in rows if r.stale),
        )

    async def follow_up_done(self, job_id: str) -> None:
        """The job's group follow-up ran (or was found not wanted): it is owed no more."""
        f = g.group_follow_ups.c
        async with self._autocommit.connect() as conn:
            await conn.execute(sa.delete(g.group_follow_ups).where(f.job_id == job_id))

    async def record_group_job(self, job: GroupJob) -> None:
        stmt = (
            insert(g.group_jobs)
            .values(
                job_id=job.job_id,
                conversation_id=job.conversation_id,
                round_id=job.round_id,
                depth=job.depth,
                last_in_round=job.last_in_round,
            )
            .on_conflict_do_nothing(index_elements=[g.group_jobs.c.job_id])
        )
        async with self._autocommit.connect() as conn:
            await conn.execute(stmt)

    async def user_by_id(self, user_id: str) -> User | None:
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(sa.select(t.users).where(t.users.c.id == user_id))
            ).one_or_none()
        if row is None:
            return None
        m = row._mapping
        return User(
            id=str(m["id"]),
            platform_user_id=m["platform_user_id"],
            display_name=m["display_name"],
            timezone=m["timezone"],
            superuser=m["superuser"],
            nsfw_verified=m["nsfw_verified"],
            created_at=m["created_at"],
            deleting=m["deletion_requested_at"] is not None,
        )
