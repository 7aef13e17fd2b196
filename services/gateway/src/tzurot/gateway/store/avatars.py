"""Avatar images (table core.avatars), one per personality, found by slug."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from tzurot.gateway import tables as t
from tzurot.gateway.store.base import SqlBase


class AvatarQueries(SqlBase):
    async def put_avatar(
        self, personality_id: str, slug: str, content_type: str, data: bytes, digest: str
    ) -> None:
        values = {"slug": slug, "content_type": content_type, "data": data, "sha256": digest}
        statement = insert(t.avatars).values(personality_id=personality_id, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[t.avatars.c.personality_id],
            set_={**values, "updated_at": sa.func.now()},
        )
        async with self._engine.begin() as conn:
            await conn.execute(statement)

    async def get_avatar(self, slug: str) -> tuple[str, bytes] | None:
        """(content type, image) of the personality whose slug is `slug`."""
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.avatars.c.content_type, t.avatars.c.data).where(
                        t.avatars.c.slug == slug
                    )
                )
            ).first()
        return None if row is None else (str(row.content_type), bytes(row.data))
