"""Usage: requests and tokens per user, provider, model and request type since a point in
time (answers, and what helper models were paid for: transcription, clean-up, description),
with what speech is billed by (characters), how many paid requests were not delivered whole
(usage_log.failed) and how many of them count Tzurot's estimate, not the provider's tokens
(usage_log.estimated)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from tzurot.gateway import tables as t
from tzurot.gateway.domain import UsageTotal
from tzurot.gateway.store.base import AdminSqlBase


class UsageQueries(AdminSqlBase):
    async def usage_totals(self, since: datetime, user_id: str | None) -> list[UsageTotal]:
        u = t.usage_log.c
        stmt = (
            sa.select(
                t.users.c.platform_user_id,
                u.provider,
                u.model,
                sa.func.count().label("requests"),
                sa.func.coalesce(sa.func.sum(u.input_tokens), 0).label("input_tokens"),
                sa.func.coalesce(sa.func.sum(u.output_tokens), 0).label("output_tokens"),
                sa.func.coalesce(sa.func.sum(u.images), 0).label("images"),
                u.request_type,
                sa.func.coalesce(sa.func.sum(u.audio_seconds), 0).label("audio_seconds"),
                sa.func.coalesce(sa.func.sum(u.characters), 0).label("characters"),
                sa.func.count().filter(u.failed).label("failed_requests"),
                sa.func.count().filter(u.estimated).label("estimated_requests"),
            )
            .join(t.users, t.users.c.id == u.user_id)
            .where(u.created_at >= since)
            .group_by(t.users.c.platform_user_id, u.provider, u.model, u.request_type)
            .order_by(t.users.c.platform_user_id, u.provider, u.model, u.request_type)
        )
        if user_id is not None:
            stmt = stmt.where(u.user_id == user_id)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            UsageTotal(
                provider=row.provider,
                model=row.model,
                requests=int(row.requests),
                input_tokens=int(row.input_tokens),
                output_tokens=int(row.output_tokens),
                platform_user_id=row.platform_user_id,
                images=int(row.images),
                request_type=row.request_type,
                audio_seconds=float(row.audio_seconds),
                characters=int(row.characters),
                failed_requests=int(row.failed_requests),
                estimated_requests=int(row.estimated_requests),
            )
            for row in rows
        ]
