"""Aliases only their user uses (`personal_aliases`): for that user they win over global ones."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Personality
from tzurot.gateway.store.base import AdminSqlBase
from tzurot.gateway.store.rows import LIVE_PERSONALITY, PERSONALITY_COLUMNS, personality_from_row

_A = t.personal_aliases.c
_UUID = UUID(as_uuid=False)


class PersonalAliases(AdminSqlBase):
    async def personal_aliases(self, user_id: str) -> list[tuple[str, Personality]]:
        """(alias as typed, personality) of the user's aliases, by alias."""
        stmt = (
            sa.select(_A.display, *PERSONALITY_COLUMNS)
            .join(t.personalities, t.personalities.c.id == _A.personality_id)
            .where(_A.user_id == user_id, LIVE_PERSONALITY)
            .order_by(_A.alias)
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(row.display, personality_from_row(row._mapping)) for row in rows]

    async def personal_alias(self, user_id: str, key: str) -> Personality | None:
        """The personality `key` (a normalized alias) names for this user, if they have it."""
        stmt = (
            sa.select(*PERSONALITY_COLUMNS)
            .join(t.personal_aliases, t.personalities.c.id == _A.personality_id)
            .where(_A.user_id == user_id, _A.alias == key, LIVE_PERSONALITY)
        )
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else personality_from_row(row._mapping)

    async def add_personal_alias(
        self, user_id: str, key: str, display: str, personality_id: str, *, limit: int
    ) -> bool:
        """Adds the alias unless the user has it already or has `limit` of them; False then."""
        count = sa.select(sa.func.count()).where(_A.user_id == user_id).scalar_subquery()
        source = sa.select(
            sa.literal(user_id, type_=_UUID),
            sa.literal(key),
            sa.literal(display),
            sa.literal(personality_id, type_=_UUID),
        ).where(count < limit)
        stmt = (
            insert(t.personal_aliases)
            .from_select(["user_id", "alias", "display", "personality_id"], source)
            .on_conflict_do_nothing()
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def remove_personal_alias(self, user_id: str, key: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t.personal_aliases).where(_A.user_id == user_id, _A.alias == key)
            )
        return bool(result.rowcount)
