"""Privacy and export: every `core` row about a user, and deleting them all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.store.base import AdminSqlBase
from tzurot.gateway.store.in_flight import delete_answers_in_flight
from tzurot.gateway.store.jobs import TURN_KEY_PREFIX
from tzurot.gateway.store.personality_related import delete_references
from tzurot.gateway.store.previews import (
    BLANK,
    UNFINISHED_KIND,
    USER_DATA_DELETING,
    keep_withheld,
    withhold_unfinished,
)
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


CARD_PICTURE = "avatar"
"""The path of a card's picture among its personality's assets (admin/cards.py)."""


def _pictures(user_id: str) -> sa.CompoundSelect[Any]:
    """The pictures of the user's personalities: the served avatar (`core.avatars`) and the
    card picture (`core.personality_assets`), with their size and SHA-256 (hex), which tells
    the two apart when a card import made one the other."""
    a, c, p = t.avatars.c, t.personality_assets.c, t.personalities.c
    return sa.union_all(
        sa.select(
            a.personality_id,
            sa.literal("avatar").label("kind"),
            a.content_type,
            sa.func.octet_length(a.data).label("size_bytes"),
            a.sha256,
        )
        .join(t.personalities, p.id == a.personality_id)
        .where(p.owner_user_id == user_id),
        sa.select(
            c.personality_id,
            sa.literal("card"),
            c.content_type,
            sa.func.octet_length(c.data),
            sa.func.encode(sa.func.sha256(c.data), "hex"),
        )
        .join(t.personalities, p.id == c.personality_id)
        .where(p.owner_user_id == user_id, c.path == CARD_PICTURE),
    )


def _rows(result: sa.CursorResult[Any] | sa.Result[Any]) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row._mapping.items()} for row in result.all()]


class PrivacyQueries(AdminSqlBase):
    async def export_user(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every `core` row about the user, as JSON-ready dicts per file of the export
        (admin/privacy.py documents them), and `pictures`: the avatar and card picture of
        each personality they own. No bytes: a voice sample's, a picture's and an answer
        file's rows carry their `size_bytes`, their data is read apart (`voice_sample_data`,
        `picture_data`, `answer_file_data`)."""
        j, p, lb = t.jobs.c, t.personalities.c, t.lorebooks.c
        v, s, f = t.personality_voices.c, t.voice_samples.c, t.job_files.c
        e, fw = g.bot_events.c, g.freewill_personalities.c
        scheduled = j.idempotency_key.startswith(TURN_KEY_PREFIX)
        owned_aliases = (
            sa.select(
                sa.func.coalesce(
                    sa.func.array_agg(
                        aggregate_order_by(
                            t.personality_aliases.c.display, t.personality_aliases.c.display
                        )
                    ),
                    sa.text("'{}'::text[]"),
                )
            )
            .where(t.personality_aliases.c.personality_id == p.id)
            .scalar_subquery()
            .label("aliases")
        )
        attached = (
            sa.select(
                sa.func.coalesce(
                    sa.func.jsonb_agg(
                        aggregate_order_by(
                            sa.func.jsonb_build_object(
                                "scope",
                                t.lorebook_attachments.c.scope,
                                "target",
                                t.lorebook_attachments.c.target,
                            ),
                            t.lorebook_attachments.c.scope,
                            t.lorebook_attachments.c.target,
                        )
                    ),
                    sa.text("'[]'::jsonb"),
                )
            )
            .where(t.lorebook_attachments.c.lorebook_id == lb.id)
            .scalar_subquery()
            .label("attached_to")
        )
        queries: dict[str, sa.Select[Any] | sa.CompoundSelect[Any]] = {
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
            "personalities_owned": sa.select(t.personalities, owned_aliases)
            .where(p.owner_user_id == user_id)
            .order_by(p.created_at, p.slug),
            # A scheduled turn they paid for answered no message of theirs: its answer (and
            # reasoning) is the channel's, as memory keeps it, and stays out.
            "messages": sa.select(
                j.id,
                j.created_at,
                j.guild_id,
                j.channel_id,
                j.parent_channel_id,
                j.personality_id,
                j.request_content,
                j.request_message_ids,
                sa.case((scheduled, sa.null()), else_=j.content).label("answer"),
                j.status,
                scheduled.label("scheduled"),
                j.delivered_message_ids,
                j.provider,
                j.model,
                j.input_tokens,
                j.output_tokens,
                j.error_code,
                j.error_message,
                # What helper models read of their attachments (transcripts, descriptions).
                j.attachment_reads,
                sa.case((scheduled, sa.null()), else_=j.reasoning).label("reasoning"),
                j.finished_at,
                j.delivered_at,
            )
            .where(j.user_id == user_id)
            .order_by(j.created_at, j.id),
            "answer_files": sa.select(
                f.job_id,
                f.position,
                f.filename,
                f.content_type,
                f.description,
                sa.func.octet_length(f.data).label("size_bytes"),
            )
            .join(t.jobs, t.jobs.c.id == f.job_id)
            .where(j.user_id == user_id, ~scheduled)
            .order_by(j.created_at, f.job_id, f.position),
            "usage": sa.select(t.usage_log)
            .where(t.usage_log.c.user_id == user_id)
            .order_by(t.usage_log.c.created_at, t.usage_log.c.id),
            "lorebooks": sa.select(
                *(c for c in t.lorebooks.c if c.name != "owner_user_id"), attached
            )
            .where(lb.owner_user_id == user_id)
            .order_by(lb.created_at, lb.id),
            "voice_samples": sa.select(
                s.id,
                s.personality_id,
                p.slug.label("personality"),
                s.filename,
                s.format,
                s.duration_secs,
                s.size_bytes,
                s.created_at,
            )
            .join(t.personalities, p.id == s.personality_id)
            .where(s.uploaded_by == user_id)
            .order_by(s.created_at, s.id),
            "voices_cloned": sa.select(
                v.personality_id,
                p.slug.label("personality"),
                v.provider,
                v.voice_id,
                v.model,
                v.updated_at,
            )
            .join(t.personalities, p.id == v.personality_id)
            .where(v.cloned_by == user_id)
            .order_by(p.slug),
            "free_will": sa.select(
                fw.conversation_id,
                fw.personality_id,
                fw.enabled,
                fw.disabled_reason,
                fw.updated_at,
            )
            .where(fw.payer_user_id == user_id)
            .order_by(fw.conversation_id, fw.personality_id),
            "scheduled_turns": sa.select(
                e.id,
                e.kind,
                e.reason,
                e.guild_id,
                e.channel_id,
                e.thread_id,
                e.personality_id,
                e.created_at,
                e.available_at,
                e.delivered_at,
                e.dropped_reason,
                e.message_ids,
            )
            .where(e.payer_user_id == user_id)
            .order_by(e.created_at, e.id),
            "pictures": _pictures(user_id),
        }
        async with self._engine.connect() as conn:
            return {name: _rows(await conn.execute(stmt)) for name, stmt in queries.items()}

    async def voice_sample_data(self, sample_id: str) -> bytes:
        """A voice sample's audio (b"" when it is gone)."""
        stmt = sa.select(t.voice_samples.c.data).where(t.voice_samples.c.id == sample_id)
        async with self._autocommit.connect() as conn:
            return bytes(await conn.scalar(stmt) or b"")

    async def picture_data(self, personality_id: str, kind: str, user_id: str) -> bytes:
        """A picture (`kind` as `pictures` lists it) of a personality the user owns (b"" when
        it is gone, or the personality is no longer theirs)."""
        table = t.avatars if kind == "avatar" else t.personality_assets
        stmt = (
            sa.select(table.c.data)
            .join(t.personalities, t.personalities.c.id == table.c.personality_id)
            .where(
                table.c.personality_id == personality_id,
                t.personalities.c.owner_user_id == user_id,
                *([] if kind == "avatar" else [t.personality_assets.c.path == CARD_PICTURE]),
            )
        )
        async with self._autocommit.connect() as conn:
            return bytes(await conn.scalar(stmt) or b"")

    async def answer_file_data(self, job_id: str, position: int) -> bytes:
        """A file an answer carried (b"" when it is gone)."""
        f = t.job_files.c
        stmt = sa.select(f.data).where(f.job_id == job_id, f.position == position)
        async with self._autocommit.connect() as conn:
            return bytes(await conn.scalar(stmt) or b"")

    async def private_personality_ids(self, user_id: str) -> list[str]:
        """The ids of the user's private personalities: her data deletion deletes them."""
        p = t.personalities.c
        stmt = (
            sa.select(p.id)
            .where(p.owner_user_id == user_id, sa.not_(p.public))
            .order_by(p.created_at, p.id)
        )
        async with self._autocommit.connect() as conn:
            return [str(found) for found in await conn.scalars(stmt)]

    async def delete_user_content(self, user_id: str, now: datetime | None = None) -> int:
        """Everything of the user in `core` but their `users` row, in one transaction; rows
        deleted. Their jobs go first: an answer of theirs still in flight is not delivered
        (nor stored into history) afterwards, and nothing they pay for is scheduled. What they
        published for others stays, ownerless once the `users` row goes: their public
        personalities, and lorebooks attached where others use them (a channel, everywhere, a
        personality that stays, or the card of one). Their private personalities (with their
        aliases, pictures, voices and lore state, anyone's settings, lorebook attachments and
        denylist entries toward them, and anyone's answers from them still in flight), their
        other lorebooks, the voice samples they uploaded, the voices they
        cloned and their rate-limit buckets are deleted. The answers of theirs a dead bot left
        showing a preview are handed to the bot first, withheld (store/previews.py), and stay
        when their personality is one of those deleted here: they no longer name it; so do
        anyone's from those, handed over when each was forgotten (store/in_flight.py); due by
        `now`, the gateway's clock (store/previews.withhold_unfinished)."""
        p, lb, a = t.personalities.c, t.lorebooks.c, t.lorebook_attachments.c
        private = sa.and_(p.owner_user_id == user_id, sa.not_(p.public))
        kept_by_others = sa.exists().where(
            a.lorebook_id == lb.id,
            sa.or_(
                a.scope != "personality",
                a.target.in_(sa.select(sa.cast(p.id, sa.Text))),
            ),
        )
        e = g.bot_events.c
        statements = [
            # Her answers handed to a bot after its death and shown already: blanked (where
            # they were, what they showed), the rows kept as tombstones (their dedup keys stop
            # a sweep that read her job before it went from queueing it again).
            sa.update(g.bot_events)
            .where(
                e.kind == UNFINISHED_KIND,
                e.delivered_at.is_not(None),
                e.job_id.in_(sa.select(t.jobs.c.id).where(t.jobs.c.user_id == user_id)),
            )
            .values(**BLANK),
            sa.delete(t.jobs).where(t.jobs.c.user_id == user_id),
            sa.delete(g.bot_events).where(g.bot_events.c.payer_user_id == user_id),
            sa.delete(g.freewill_personalities).where(
                g.freewill_personalities.c.payer_user_id == user_id
            ),
            sa.delete(t.usage_log).where(t.usage_log.c.user_id == user_id),
            sa.delete(t.voice_samples).where(t.voice_samples.c.uploaded_by == user_id),
            sa.delete(t.personality_voices).where(t.personality_voices.c.cloned_by == user_id),
            # Memory forgot her private personalities before this: an answer of someone
            # else's from one of them is not stored into history once they are gone.
            delete_answers_in_flight(t.jobs.c.personality_id.in_(sa.select(p.id).where(private))),
            # Anyone's settings, attachments and denylist entries toward them (no cascade).
            *delete_references(private),
            sa.delete(t.personalities).where(private),
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
            # Before her jobs go: the answers a dead bot left half shown, handed to the bot
            # to say why they stop there (unfinished.py), and kept when their personality is
            # a private one of hers, deleted below; not counted as deleted.
            her_jobs = t.jobs.c.user_id == user_id
            await conn.execute(withhold_unfinished(her_jobs, USER_DATA_DELETING, now))
            await conn.execute(keep_withheld(private))
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
