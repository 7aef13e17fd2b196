"""Channels and moderation: the personalities a channel has activated, and the denylist."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.domain import ChannelActivation, DenyEntry, DenyMode, DenyScope, DenyTarget
from tzurot.gateway.store.base import AdminSqlBase
from tzurot.gateway.store.rows import (
    LIVE_PERSONALITY,
    PERSONALITY_COLUMNS,
    deny_from_row,
    personality_from_row,
)


class ChannelQueries(AdminSqlBase):
    async def get_activation(
        self, channel_id: str, personality_id: str | None = None
    ) -> ChannelActivation | None:
        """The personality's activation in the channel, or the channel's first one."""
        a = t.channel_activations.c
        stmt = (
            sa.select(
                a.guild_id,
                a.channel_id,
                a.activated_by_user_id,
                a.activated_at,
                *PERSONALITY_COLUMNS,
            )
            .join(t.personalities, t.personalities.c.id == a.personality_id)
            .where(a.channel_id == channel_id, LIVE_PERSONALITY)
            .order_by(a.activated_at, t.personalities.c.slug)
            .limit(1)
        )
        if personality_id is not None:
            stmt = stmt.where(a.personality_id == personality_id)
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        m = row._mapping
        return ChannelActivation(
            guild_id=m["guild_id"],
            channel_id=m["channel_id"],
            personality=personality_from_row(m),
            activated_by_user_id=None
            if m["activated_by_user_id"] is None
            else str(m["activated_by_user_id"]),
            activated_at=m["activated_at"],
        )

    async def activate(
        self, guild_id: str, channel_id: str, personality_id: str, user_id: str | None
    ) -> bool:
        """Adds the personality to the channel; False when it was there already."""
        a = t.channel_activations.c
        stmt = (
            insert(t.channel_activations)
            .values(
                channel_id=channel_id,
                guild_id=guild_id,
                personality_id=personality_id,
                activated_by_user_id=user_id,
            )
            .on_conflict_do_nothing(index_elements=[a.channel_id, a.personality_id])
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def deactivate(self, channel_id: str, personality_id: str | None = None) -> bool:
        """Removes one personality from the channel, or all of them; in the same transaction,
        the free will of each removed one is switched off in the channel and its threads
        (reason DEACTIVATED): free will is for activated personalities only."""
        a = t.channel_activations.c
        stmt = sa.delete(t.channel_activations).where(a.channel_id == channel_id)
        if personality_id is not None:
            stmt = stmt.where(a.personality_id == personality_id)
        fp, fc = g.freewill_personalities.c, g.freewill_channels.c
        async with self._engine.begin() as conn:
            removed = (await conn.scalars(stmt.returning(a.personality_id))).all()
            if removed:
                here = sa.select(fc.conversation_id).where(fc.channel_id == channel_id)
                await conn.execute(
                    sa.update(g.freewill_personalities)
                    .where(
                        fp.conversation_id.in_(here),
                        fp.personality_id.in_(removed),
                        fp.enabled.is_(True),
                    )
                    .values(enabled=False, disabled_reason="DEACTIVATED", updated_at=sa.func.now())
                )
        return bool(removed)


class ModerationQueries(AdminSqlBase):
    async def add_deny(
        self,
        *,
        target: DenyTarget,
        target_id: str,
        scope: DenyScope,
        scope_id: str,
        mode: DenyMode,
        reason: str,
    ) -> DenyEntry:
        stmt = insert(t.denylist).values(
            target=target.value,
            target_id=target_id,
            scope=scope.value,
            scope_id=scope_id,
            mode=mode.value,
            reason=reason,
        )
        upsert = stmt.on_conflict_do_update(
            constraint="denylist_entry_key",
            set_={"mode": stmt.excluded.mode, "reason": stmt.excluded.reason},
        ).returning(*t.denylist.c)
        async with self._engine.begin() as conn:
            row = (await conn.execute(upsert)).one()
        return deny_from_row(row._mapping)

    async def remove_deny(self, entry_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(sa.delete(t.denylist).where(t.denylist.c.id == entry_id))
        return bool(result.rowcount)

    async def list_deny(self) -> list[DenyEntry]:
        async with self._autocommit.connect() as conn:
            rows = (
                await conn.execute(sa.select(t.denylist).order_by(t.denylist.c.created_at))
            ).all()
        return [deny_from_row(row._mapping) for row in rows]

    async def matching_deny(
        self,
        *,
        user_id: str,
        guild_id: str,
        channel_id: str,
        personality_slug: str,
        thread_id: str = "",
    ) -> list[DenyEntry]:
        """Entries that apply to this user (or their guild) here and toward this personality.
        A channel entry names a channel (its threads too) or one thread (`thread_id`)."""
        d = t.denylist.c
        scopes = [sa.and_(d.scope == DenyScope.BOT.value)]
        if guild_id:
            scopes.append(sa.and_(d.scope == DenyScope.GUILD.value, d.scope_id == guild_id))
        for place in (channel_id, thread_id):
            if place:
                scopes.append(sa.and_(d.scope == DenyScope.CHANNEL.value, d.scope_id == place))
        scopes.append(
            sa.and_(d.scope == DenyScope.PERSONALITY.value, d.scope_id == personality_slug)
        )
        targets = [sa.and_(d.target == DenyTarget.USER.value, d.target_id == user_id)]
        if guild_id:
            targets.append(sa.and_(d.target == DenyTarget.GUILD.value, d.target_id == guild_id))
        stmt = sa.select(t.denylist).where(sa.or_(*targets), sa.or_(*scopes))
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [deny_from_row(row._mapping) for row in rows]
