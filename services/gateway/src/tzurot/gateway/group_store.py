"""SQL of group channels: activations, talkativeness, rounds and chains, the bot event outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import ChannelActivation, GroupJob, Location, User
from tzurot.gateway.store import PERSONALITY_COLUMNS, personality_from_row

DEFAULT_TALKATIVENESS = 0.5

__all__ = ["ActiveMember", "BotEventRow", "ChannelState", "GroupJob", "GroupStore"]


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
    )


def location_values(where: Location) -> dict[str, Any]:
    """A Location as bot_events / freewill columns (channel_id is the parent channel)."""
    return {
        "guild_id": where.guild_id,
        "channel_id": where.channel_id,
        "thread_id": where.thread_id,
        "nsfw_channel": where.nsfw_channel,
    }


class GroupStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
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
            .where(a.channel_id == channel_id)
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

    async def set_talkativeness(self, personality_id: str, value: float) -> None:
        stmt = insert(g.personality_traits).values(
            personality_id=personality_id, talkativeness=value
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[g.personality_traits.c.personality_id],
            set_={"talkativeness": value, "updated_at": sa.func.now()},
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt)

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

    # ---- the bot event outbox ----

    async def add_event(
        self, values: dict[str, Any], conn: AsyncConnection | None = None
    ) -> str | None:
        """Queues an event; None when its dedup_key was queued already (once-only)."""
        stmt = (
            insert(g.bot_events)
            .values(**values)
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
        lease ran out (its subscriber went away) is claimed again.
        """
        e = g.bot_events.c
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
        stmt = (
            sa.update(g.bot_events)
            .where(e.id.in_(due.scalar_subquery()))
            .values(claimed_until=now + lease, attempts=e.attempts + 1)
            .returning(*g.bot_events.c)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        events = [_event(r._mapping) for r in rows]
        return sorted(events, key=lambda ev: (ev.available_at, ev.created_at))

    async def release_events(self, held: Mapping[str, datetime]) -> int:
        """Gives back claims a subscriber no longer holds (its stream ended), unless
        acknowledged meanwhile or claimed since by someone else (a different lease end)."""
        e = g.bot_events.c
        by_lease: dict[datetime, list[str]] = {}
        for event_id, until in held.items():
            by_lease.setdefault(until, []).append(event_id)
        released = 0
        async with self.engine.begin() as conn:
            for until, ids in by_lease.items():
                result = await conn.execute(
                    sa.update(g.bot_events)
                    .where(e.id.in_(ids), e.claimed_until == until, e.delivered_at.is_(None))
                    .values(claimed_until=None)
                )
                released += result.rowcount
        return released

    async def event(self, event_id: str) -> BotEventRow | None:
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(sa.select(g.bot_events).where(g.bot_events.c.id == event_id))
            ).one_or_none()
        return None if row is None else _event(row._mapping)

    async def ack_event(
        self, event_id: str, message_ids: Sequence[str], dropped_reason: str, now: datetime
    ) -> bool:
        e = g.bot_events.c
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(g.bot_events)
                .where(e.id == event_id, e.delivered_at.is_(None))
                .values(
                    delivered_at=now, message_ids=list(message_ids), dropped_reason=dropped_reason
                )
            )
        return bool(result.rowcount)

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
        )
