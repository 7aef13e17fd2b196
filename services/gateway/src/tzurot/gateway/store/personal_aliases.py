"""Aliases only their user uses (`personal_aliases`): for that user they win over global ones.
Compared by key (`same_key`: a Greek final sigma is a sigma), as global aliases are."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import same_key
from tzurot.gateway.store.base import AdminSqlBase
from tzurot.gateway.store.name_lookups import alias_key
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

    async def personal_alias(self, user_id: str, alias: str) -> Personality | None:
        """The personality `alias` (normalized) names for this user, if they have it (by key;
        the alias written so first, should two of one key have been stored before keys were
        compared so)."""
        stmt = (
            sa.select(*PERSONALITY_COLUMNS)
            .join(t.personal_aliases, t.personalities.c.id == _A.personality_id)
            .where(_A.user_id == user_id, alias_key(_A.alias) == same_key(alias), LIVE_PERSONALITY)
            .order_by(_A.alias != alias, _A.alias)
            .limit(1)
        )
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else personality_from_row(row._mapping)

    async def add_personal_alias(
        self, user_id: str, alias: str, display: str, personality_id: str, *, limit: int
    ) -> bool:
        """Adds the alias (normalized) unless the user has one of its key already or has
        `limit` of them; False then."""
        count = sa.select(sa.func.count()).where(_A.user_id == user_id).scalar_subquery()
        same = sa.exists().where(_A.user_id == user_id, alias_key(_A.alias) == same_key(alias))
        source = sa.select(
            sa.literal(user_id, type_=_UUID),
            sa.literal(alias),
            sa.literal(display),
            sa.literal(personality_id, type_=_UUID),
        ).where(count < limit, ~same)
        stmt = (
            insert(t.personal_aliases)
            .from_select(["user_id", "alias", "display", "personality_id"], source)
            .on_conflict_do_nothing()
        )
        async with self._engine.begin() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def remove_personal_alias(self, user_id: str, alias: str) -> bool:
        """Removes the user's alias `alias` (normalized), by key."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t.personal_aliases).where(
                    _A.user_id == user_id, alias_key(_A.alias) == same_key(alias)
                )
            )
        return bool(result.rowcount)
