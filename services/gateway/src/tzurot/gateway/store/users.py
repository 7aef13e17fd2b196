"""Users and personas: the actor's user row (created on first sight), their personas."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Actor, Persona, User
from tzurot.gateway.store.base import AdminSqlBase, SqlBase
from tzurot.gateway.store.rows import persona_from_row, user_from_row


def _upsert_user_statement() -> sa.CompoundSelect[Any]:
    """INSERT … ON CONFLICT that updates only on a change; unchanged, it reads the row.

    Built once (bind parameters), so no per-call construction or cache-key work.
    """
    users = t.users.c
    stmt = insert(t.users).values(
        platform_user_id=sa.bindparam("platform_user_id", type_=sa.String),
        display_name=sa.bindparam("display_name", type_=sa.String),
        superuser=sa.bindparam("superuser", type_=sa.Boolean),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[users.platform_user_id],
        set_={
            "display_name": stmt.excluded.display_name,
            "superuser": users.superuser | stmt.excluded.superuser,
        },
        where=sa.or_(
            users.display_name.is_distinct_from(stmt.excluded.display_name),
            sa.and_(stmt.excluded.superuser, sa.not_(users.superuser)),
        ),
    )
    # Unchanged (the usual case): ON CONFLICT … WHERE returns nothing, so the same
    # statement also reads the row as it stands.
    changed = stmt.returning(*t.users.c).cte("changed")
    unchanged = sa.select(t.users).where(
        users.platform_user_id == sa.bindparam("platform_user_id"),
        ~sa.exists(sa.select(changed.c.id)),
    )
    return sa.union_all(sa.select(changed), unchanged)


_UPSERT_USER = _upsert_user_statement()
_USER_BY_PLATFORM_ID = sa.select(t.users).where(
    t.users.c.platform_user_id == sa.bindparam("platform_user_id")
)


class UserReads(SqlBase):
    async def upsert_user(self, actor: Actor, *, superuser: bool = False) -> User:
        """The actor's user, created on first sight; `superuser` grants (never revokes) it."""
        params = {
            "platform_user_id": actor.platform_user_id,
            "display_name": actor.display_name,
            "superuser": superuser,
        }
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            row = (await conn.execute(_UPSERT_USER, params)).one_or_none()
            if row is None:  # created by a concurrent request after the upsert began
                row = (await conn.execute(_USER_BY_PLATFORM_ID, params)).one()
        return user_from_row(row._mapping)

    async def user_deleting(self, user_id: str) -> bool:
        """Whether the user's data deletion is under way (or done: no such user)."""
        u = t.users.c
        stays = sa.exists().where(u.id == user_id, u.deletion_requested_at.is_(None))
        async with self._autocommit.connect() as conn:
            return not await conn.scalar(sa.select(stays))


class UserWrites(AdminSqlBase):
    async def update_user(self, user_id: str, **values: Any) -> User:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.update(t.users)
                    .where(t.users.c.id == user_id)
                    .values(**values)
                    .returning(*t.users.c)
                )
            ).one()
        return user_from_row(row._mapping)

    # ---- personas ----

    async def get_persona(self, user_id: str, personality_id: str | None) -> Persona | None:
        p = t.personas.c
        match = (
            p.personality_id.is_(None)
            if personality_id is None
            else (p.personality_id == personality_id)
        )
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(sa.select(t.personas).where(p.user_id == user_id, match))
            ).one_or_none()
        return None if row is None else persona_from_row(row)

    async def effective_persona(self, user_id: str, personality_id: str) -> Persona | None:
        """The user's persona for this personality, else their default one: one query."""
        p = t.personas.c
        stmt = (
            sa.select(t.personas)
            .where(
                p.user_id == user_id,
                sa.or_(p.personality_id == personality_id, p.personality_id.is_(None)),
            )
            .order_by(p.personality_id.nulls_last())
            .limit(1)
        )
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else persona_from_row(row)

    async def set_persona(self, user_id: str, personality_id: str | None, persona: Persona) -> None:
        values = {
            "name": persona.name,
            "preferred_name": persona.preferred_name,
            "pronouns": persona.pronouns,
            "description": persona.description,
        }
        stmt = insert(t.personas).values(user_id=user_id, personality_id=personality_id, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.personas.c.user_id, sa.text("coalesce(personality_id::text, '')")],
            set_={**values, "updated_at": sa.func.now()},
        )
        async with self._engine.begin() as conn:
            await conn.execute(stmt)
