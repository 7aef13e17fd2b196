"""Lorebooks, where they are attached, each conversation's lore state, and card assets."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.cards.lorebooks import Lorebook, without_outlets
from tzurot.gateway.ids import is_uuid
from tzurot.gateway.lore import SCOPES, LoreContext, LoreState, Scope, StoredLorebook, TimedEffect
from tzurot.gateway.store.base import AdminSqlBase, SqlBase

_ATTACH = t.lorebook_attachments.alias("attach")
# Correlated to the lorebook row only (a query may also read lorebook_attachments itself).
_ATTACHED = (
    sa.select(sa.func.array_agg(sa.func.concat(_ATTACH.c.scope, ":", _ATTACH.c.target)))
    .where(_ATTACH.c.lorebook_id == t.lorebooks.c.id)
    .correlate(t.lorebooks)
    .scalar_subquery()
    .label("attached")
)
LOREBOOK_COLUMNS = (*t.lorebooks.c, _ATTACHED)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def lorebook_from_row(row: Any) -> StoredLorebook:
    book = Lorebook.model_validate(
        {
            "name": row["name"],
            "description": row["description"],
            "scan_depth": row["scan_depth"],
            "token_budget": row["token_budget"],
            "recursive_scanning": row["recursive_scanning"],
            "extensions": _json(row["extensions"]) or {},
            "entries": _json(row["entries"]) or [],
        }
    )
    attached: list[tuple[Scope, str]] = []
    for item in row["attached"] or ():
        scope, _, target = str(item).partition(":")
        attached.append((scope, target))  # type: ignore[arg-type]  # stored from Scope only
    return StoredLorebook(
        id=str(row["id"]),
        book=book,
        owner_user_id=None if row["owner_user_id"] is None else str(row["owner_user_id"]),
        attachments=tuple(sorted(attached)),
        card_personality_id=None
        if row["card_personality_id"] is None
        else str(row["card_personality_id"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def book_values(book: Lorebook) -> dict[str, Any]:
    return {
        "name": book.name,
        "description": book.description,
        "scan_depth": book.scan_depth,
        "token_budget": book.token_budget,
        "recursive_scanning": book.recursive_scanning,
        "extensions": book.extensions,
        "entries": [entry.model_dump(mode="json") for entry in book.entries],
    }


class LoreReads(SqlBase):
    """What a generation needs: the lorebooks in play and the conversation's state."""

    async def lore_context(self, personality_id: str, channel_id: str) -> LoreContext:
        a = t.lorebook_attachments.c
        where = sa.or_(
            sa.and_(a.scope == "channel", a.target == channel_id),
            sa.and_(a.scope == "personality", a.target == personality_id),
            a.scope == "global",
        )
        books = (
            sa.select(a.scope, *LOREBOOK_COLUMNS)
            .join(t.lorebooks, t.lorebooks.c.id == a.lorebook_id)
            .where(where)
            .order_by(t.lorebooks.c.created_at, t.lorebooks.c.id)
        )
        state = sa.select(t.lore_states.c.message_count, t.lore_states.c.effects).where(
            t.lore_states.c.channel_id == channel_id,
            t.lore_states.c.personality_id == personality_id,
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(books)).mappings().all()
            if not rows:
                return LoreContext()
            saved = (await conn.execute(state)).one_or_none()
        found: dict[str, tuple[Scope, StoredLorebook]] = {}
        for row in rows:
            scope: Scope = row["scope"]
            stored = lorebook_from_row(row)
            stored = replace(stored, book=without_outlets(stored.book))  # never placed
            previous = found.get(stored.id)
            if previous is None or SCOPES.index(scope) < SCOPES.index(previous[0]):
                found[stored.id] = (scope, stored)
        ordered = sorted(found.values(), key=lambda pair: SCOPES.index(pair[0]))
        lore_state = LoreState()
        if saved is not None:
            lore_state = LoreState(
                message_count=saved.message_count,
                effects=tuple(TimedEffect(**e) for e in _json(saved.effects) or ()),
            )
        return LoreContext(books=tuple(ordered), state=lore_state)

    async def save_lore_state(self, channel_id: str, personality_id: str, state: LoreState) -> None:
        values = {
            "channel_id": channel_id,
            "personality_id": personality_id,
            "message_count": state.message_count,
            "effects": state.to_json(),
        }
        stmt = insert(t.lore_states).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.lore_states.c.channel_id, t.lore_states.c.personality_id],
            set_={
                "message_count": stmt.excluded.message_count,
                "effects": stmt.excluded.effects,
                "updated_at": sa.func.now(),
            },
        )
        async with self._autocommit.connect() as conn:
            await conn.execute(stmt)


class LorebookWrites(AdminSqlBase):
    async def create_lorebook(
        self, book: Lorebook, owner_user_id: str | None, attach: tuple[Scope, str] | None = None
    ) -> str:
        async with self._engine.begin() as conn:
            book_id = str(
                await conn.scalar(
                    sa.insert(t.lorebooks)
                    .values(**book_values(book), owner_user_id=owner_user_id)
                    .returning(t.lorebooks.c.id)
                )
            )
            if attach is not None:
                await _attach(conn, book_id, *attach)
        return book_id

    async def replace_lorebook(
        self, lorebook_id: str, book: Lorebook, attach: tuple[Scope, str] | None = None
    ) -> None:
        """New entries and settings for a lorebook; its id, owner and attachments stay, and
        `attach` is added in the same transaction (both happen, or neither)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(t.lorebooks)
                .where(t.lorebooks.c.id == lorebook_id)
                .values(**book_values(book), updated_at=sa.func.now())
            )
            if attach is not None:
                await _attach(conn, lorebook_id, *attach)

    async def get_lorebook(self, lorebook_id: str) -> StoredLorebook | None:
        if not is_uuid(lorebook_id):
            return None
        async with self._autocommit.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(*LOREBOOK_COLUMNS).where(t.lorebooks.c.id == lorebook_id)
                    )
                )
                .mappings()
                .one_or_none()
            )
        return None if row is None else lorebook_from_row(row)

    async def lorebooks_named(self, name: str) -> list[StoredLorebook]:
        stmt = (
            sa.select(*LOREBOOK_COLUMNS)
            .where(sa.func.lower(t.lorebooks.c.name) == name.strip().lower())
            .order_by(t.lorebooks.c.created_at)
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [lorebook_from_row(row) for row in rows]

    async def list_lorebooks(
        self, *, owner_user_id: str | None, everything: bool, attached: tuple[Scope, str] | None
    ) -> list[StoredLorebook]:
        stmt = sa.select(*LOREBOOK_COLUMNS).order_by(
            sa.func.lower(t.lorebooks.c.name), t.lorebooks.c.id
        )
        a = t.lorebook_attachments.c
        if attached is not None:
            stmt = stmt.where(
                sa.exists().where(
                    a.lorebook_id == t.lorebooks.c.id,
                    a.scope == attached[0],
                    a.target == attached[1],
                )
            )
        elif not everything:
            stmt = stmt.where(t.lorebooks.c.owner_user_id == owner_user_id)
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).mappings().all()
        return [lorebook_from_row(row) for row in rows]

    async def delete_lorebook(self, lorebook_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(sa.delete(t.lorebooks).where(t.lorebooks.c.id == lorebook_id))

    async def attach_lorebook(self, lorebook_id: str, scope: Scope, target: str) -> None:
        async with self._engine.begin() as conn:
            await _attach(conn, lorebook_id, scope, target)

    async def detach_lorebook(self, lorebook_id: str, scope: Scope, target: str) -> bool:
        a = t.lorebook_attachments.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(t.lorebook_attachments).where(
                    a.lorebook_id == lorebook_id, a.scope == scope, a.target == target
                )
            )
        return bool(result.rowcount)

    async def user_id_for(self, platform_user_id: str) -> str:
        """The user of a platform id, created (nameless) when never seen; an existing user is
        left as it is (an import must not rename anyone)."""
        return (await self.user_for(platform_user_id))[0]

    async def user_for(self, platform_user_id: str) -> tuple[str, str]:
        """(id, display name) of the user of a platform id, created nameless if never seen."""
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(t.users).values(platform_user_id=platform_user_id).on_conflict_do_nothing()
            )
            found = (
                await conn.execute(
                    sa.select(t.users.c.id, t.users.c.display_name).where(
                        t.users.c.platform_user_id == platform_user_id
                    )
                )
            ).one()
        return str(found.id), str(found.display_name or "")

    # ---- a personality's card: its assets and its book ----

    async def card_assets(self, personality_id: str) -> dict[str, tuple[str, bytes]]:
        c = t.personality_assets.c
        async with self._autocommit.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(c.path, c.content_type, c.data).where(
                        c.personality_id == personality_id
                    )
                )
            ).all()
        return {row.path: (row.content_type, bytes(row.data)) for row in rows}

    async def card_lorebook(self, personality_id: str) -> StoredLorebook | None:
        async with self._autocommit.connect() as conn:
            row = (
                (
                    await conn.execute(
                        sa.select(*LOREBOOK_COLUMNS).where(
                            t.lorebooks.c.card_personality_id == personality_id
                        )
                    )
                )
                .mappings()
                .one_or_none()
            )
        return None if row is None else lorebook_from_row(row)


async def _attach(conn: AsyncConnection, lorebook_id: str, scope: Scope, target: str) -> None:
    await conn.execute(
        insert(t.lorebook_attachments)
        .values(lorebook_id=lorebook_id, scope=scope, target=target)
        .on_conflict_do_nothing()
    )


async def save_card_parts(
    conn: AsyncConnection,
    personality_id: str,
    *,
    assets: Mapping[str, tuple[str, bytes]],
    book: Lorebook | None,
    owner_user_id: str | None,
) -> None:
    """Inside a personality import: replace its card assets and its card lorebook (the book
    is attached to the personality; a re-import updates the same lorebook)."""
    c = t.personality_assets.c
    await conn.execute(sa.delete(t.personality_assets).where(c.personality_id == personality_id))
    if assets:
        await conn.execute(
            sa.insert(t.personality_assets),
            [
                {"personality_id": personality_id, "path": path, "content_type": kind, "data": data}
                for path, (kind, data) in assets.items()
            ],
        )
    existing = await conn.scalar(
        sa.select(t.lorebooks.c.id).where(t.lorebooks.c.card_personality_id == personality_id)
    )
    if book is None:
        if existing is not None:
            await conn.execute(sa.delete(t.lorebooks).where(t.lorebooks.c.id == existing))
        return
    if existing is None:
        existing = await conn.scalar(
            sa.insert(t.lorebooks)
            .values(
                **book_values(book), owner_user_id=owner_user_id, card_personality_id=personality_id
            )
            .returning(t.lorebooks.c.id)
        )
    else:
        await conn.execute(
            sa.update(t.lorebooks)
            .where(t.lorebooks.c.id == existing)
            .values(**book_values(book), updated_at=sa.func.now())
        )
    await _attach(conn, str(existing), "personality", personality_id)


async def save_avatar(
    conn: AsyncConnection, personality_id: str, content_type: str, data: bytes
) -> None:
    """The personality's picture (exported inside its PNG card)."""
    stmt = insert(t.personality_assets).values(
        personality_id=personality_id, path="avatar", content_type=content_type, data=data
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[t.personality_assets.c.personality_id, t.personality_assets.c.path],
            set_={"content_type": stmt.excluded.content_type, "data": stmt.excluded.data},
        )
    )


def record_greeting(channel_id: str, personality_id: str, index: int) -> sa.Insert:
    """The conversation began with the character's greeting `index`: kept in its lore state
    (a protected "greeting" effect) for the @@is_greeting decorator. A statement, run in the
    transaction that marks the greeting's history stored (outbox_store), so it is kept once."""
    effect = {
        "lorebook_id": "",
        "entry_uid": "",
        "kind": "greeting",
        "start": index,
        "end": 2**31 - 1,
        "protected": True,
    }
    stmt = insert(t.lore_states).values(
        channel_id=channel_id, personality_id=personality_id, effects=[effect]
    )
    return stmt.on_conflict_do_update(
        index_elements=[t.lore_states.c.channel_id, t.lore_states.c.personality_id],
        set_={
            "effects": t.lore_states.c.effects.op("||")(stmt.excluded.effects),
            "updated_at": sa.func.now(),
        },
    )
