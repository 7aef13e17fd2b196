"""Privacy and export: every `core` row about a user, and deleting them all."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tzurot.gateway import tables as t
from tzurot.gateway.store.base import AdminSqlBase
from tzurot.gateway.store.rows import plain


def _own_settings(user_id: str) -> sa.ColumnElement[bool]:
    """The user's settings rows: their user level and their per-personality levels."""
    return sa.or_(
        sa.and_(t.settings.c.scope == "user", t.settings.c.scope_id == user_id),
        sa.and_(
            t.settings.c.scope == "user_personality",
            t.settings.c.scope_id.startswith(f"{user_id}:"),
        ),
    )


class PrivacyQueries(AdminSqlBase):
    async def export_user(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every `core` row about the user, as JSON-ready dicts per table."""
        queries = {
            "user": sa.select(t.users).where(t.users.c.id == user_id),
            "personas": sa.select(t.personas).where(t.personas.c.user_id == user_id),
            "llm_configs": sa.select(t.llm_configs).where(t.llm_configs.c.owner_user_id == user_id),
            "model_overrides": sa.select(t.model_overrides).where(
                t.model_overrides.c.user_id == user_id
            ),
            "user_models": sa.select(t.user_models).where(t.user_models.c.user_id == user_id),
            "personal_aliases": sa.select(t.personal_aliases).where(
                t.personal_aliases.c.user_id == user_id
            ),
            "settings": sa.select(t.settings).where(_own_settings(user_id)),
            "personalities_owned": sa.select(t.personalities).where(
                t.personalities.c.owner_user_id == user_id
            ),
            "messages": sa.select(
                t.jobs.c.id,
                t.jobs.c.created_at,
                t.jobs.c.guild_id,
                t.jobs.c.channel_id,
                t.jobs.c.personality_id,
                t.jobs.c.request_content,
                t.jobs.c.content.label("answer"),
                t.jobs.c.status,
            )
            .where(t.jobs.c.user_id == user_id)
            .order_by(t.jobs.c.created_at),
            "usage": sa.select(t.usage_log).where(t.usage_log.c.user_id == user_id),
        }
        out: dict[str, list[dict[str, Any]]] = {}
        async with self._engine.connect() as conn:
            for name, stmt in queries.items():
                rows = (await conn.execute(stmt)).all()
                out[name] = [{k: plain(v) for k, v in row._mapping.items()} for row in rows]
        return out

    async def delete_user(self, user_id: str) -> int:
        """Deletes the user and (by cascade) everything of theirs in `core`; rows deleted."""
        counted = [
            t.personas,
            t.llm_configs,
            t.model_overrides,
            t.user_models,
            t.personal_aliases,
            t.jobs,
            t.usage_log,
        ]
        owner_column = {t.llm_configs.name: t.llm_configs.c.owner_user_id}
        async with self._catalog_write() as conn:
            total = 0
            for table in counted:
                column = owner_column.get(table.name, table.c.get("user_id"))
                assert column is not None
                total += int(
                    await conn.scalar(
                        sa.select(sa.func.count()).select_from(table).where(column == user_id)
                    )
                    or 0
                )
            settings = await conn.execute(sa.delete(t.settings).where(_own_settings(user_id)))
            users = await conn.execute(sa.delete(t.users).where(t.users.c.id == user_id))
        return total + int(settings.rowcount) + int(users.rowcount)
