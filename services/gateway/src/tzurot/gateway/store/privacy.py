"""Privacy and export: every `core` row about a user, and deleting them all."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tzurot.gateway import group_tables as g
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

    async def user_clones(self, user_id: str) -> list[tuple[str, str]]:
        """(personality id, voice id) of each voice the user cloned (in their ElevenLabs
        account, made with their key)."""
        v = t.personality_voices.c
        stmt = sa.select(v.personality_id, v.voice_id).where(v.cloned_by == user_id)
        async with self._autocommit.connect() as conn:
            return [(str(row[0]), str(row[1])) for row in await conn.execute(stmt)]

    async def delete_user_content(self, user_id: str) -> int:
        """Everything of the user in `core` but their `users` row, in one transaction; rows
        deleted. Their jobs go first: an answer of theirs still in flight is not delivered
        (nor stored into history) afterwards, and nothing they pay for is scheduled. What they
        published for others stays, ownerless once the `users` row goes: their public
        personalities, and lorebooks attached where others use them (a channel, everywhere, a
        personality that stays, or the card of one). Their private personalities (with their
        aliases, pictures, voices and lore state), their other lorebooks, the voice samples
        they uploaded, the voices they cloned and their rate-limit buckets are deleted."""
        p, lb, a = t.personalities.c, t.lorebooks.c, t.lorebook_attachments.c
        kept_by_others = sa.exists().where(
            a.lorebook_id == lb.id,
            sa.or_(
                a.scope != "personality",
                a.target.in_(sa.select(sa.cast(p.id, sa.Text))),
            ),
        )
        statements = [
            sa.delete(t.jobs).where(t.jobs.c.user_id == user_id),
            sa.delete(g.bot_events).where(g.bot_events.c.payer_user_id == user_id),
            sa.delete(g.freewill_personalities).where(
                g.freewill_personalities.c.payer_user_id == user_id
            ),
            sa.delete(t.usage_log).where(t.usage_log.c.user_id == user_id),
            sa.delete(t.voice_samples).where(t.voice_samples.c.uploaded_by == user_id),
            sa.delete(t.personality_voices).where(t.personality_voices.c.cloned_by == user_id),
            sa.delete(t.personalities).where(p.owner_user_id == user_id, sa.not_(p.public)),
            # After their private personalities: a card book of one has lost its personality.
            sa.delete(t.lorebooks).where(
                lb.owner_user_id == user_id, lb.card_personality_id.is_(None), ~kept_by_others
            ),
            sa.delete(t.rate_buckets).where(
                t.rate_buckets.c.key.in_([f"user:{user_id}", f"guest:{user_id}"])
            ),
        ]
        total = 0
        async with self._catalog_write() as conn:
            for stmt in statements:
                total += int((await conn.execute(stmt)).rowcount)
        return total

    async def delete_user(self, user_id: str) -> int:
        """Deletes the user and (by cascade) everything of theirs left in `core`; rows
        deleted. Last of a deletion: the id is what every service knows them by."""
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
