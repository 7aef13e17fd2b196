"""Memory's Postgres store (schema `memory`): conversation turns.

Each method is one short transaction, most of them one statement. An exchange is written
by one statement (`_STORE_EXCHANGE`: its turns with `INSERT … ON CONFLICT (job_id,
position) DO NOTHING`, position 0 first, then its outbox rows): a retried or concurrent
duplicate call waits for the first writer, inserts nothing and reads back what the first
stored. The same statement stores nothing for a forgotten user or personality
(tombstones.py). Every turn of an exchange gets the statement's `now()` as created_at, so
`position` alone orders an exchange.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.db.engine import autocommit
from tzurot.memory.domain import Attachment, Exchange, Role, StoredExchange, StoredTurn
from tzurot.memory.paging import HistoryCursor
from tzurot.memory.tables import turns
from tzurot.memory.tombstones import forgotten_sql

_COLUMNS = (
    turns.c.id,
    turns.c.job_id,
    turns.c.position,
    turns.c.channel_id,
    turns.c.personality_id,
    turns.c.user_id,
    turns.c.role,
    turns.c.author_id,
    turns.c.author_name,
    turns.c.content,
    turns.c.message_ids,
    turns.c.attachments,
    turns.c.created_at,
)
# Oldest first; an exchange's turns share created_at, so position breaks the tie.
_OLDEST_FIRST = (turns.c.created_at, turns.c.job_id, turns.c.position)
_NEWEST_FIRST = tuple(column.desc() for column in _OLDEST_FIRST)
PRUNE_BATCH = 5000
"""PruneHistory deletes in batches of this many rows, one short transaction each."""
_ATTACHMENT_FIELDS = ("url", "content_type", "filename", "size_bytes", "description")


def _attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {name: getattr(attachment, name) for name in _ATTACHMENT_FIELDS}


def _attachment(data: Mapping[str, Any]) -> Attachment:
    return Attachment(
        url=str(data.get("url", "")),
        content_type=str(data.get("content_type", "")),
        filename=str(data.get("filename", "")),
        size_bytes=int(data.get("size_bytes", 0)),
        description=str(data.get("description", "")),
    )


_ROLES = {role.value: role for role in Role}


def stored_turn(row: Any) -> StoredTurn:
    """A turn from a row of `_COLUMNS`: a row mapping, or an asyncpg record (tzurot.db.direct)."""
    role = row["role"]
    attachments = row["attachments"]
    return StoredTurn(
        id=str(row["id"]),
        job_id=row["job_id"],
        position=row["position"],
        channel_id=row["channel_id"],
        personality_id=row["personality_id"],
        user_id=row["user_id"],
        role=_ROLES.get(role) or Role(role),  # a look-up; Role() raises on anything else
        author_id=row["author_id"],
        author_name=row["author_name"],
        content=row["content"],
        message_ids=tuple(row["message_ids"]),
        # Most turns have none: no generator for them.
        attachments=tuple(_attachment(item) for item in attachments) if attachments else (),
        created_at=row["created_at"],
    )


def stored_turns(rows: Iterable[Any]) -> list[StoredTurn]:
    """The turns of rows of `_COLUMNS`, in the rows' order."""
    return [stored_turn(row) for row in rows]


def _conversation(channel_id: str, personality_id: str) -> sa.ColumnElement[bool]:
    """One personality's conversation in a channel; every personality's when it is ''."""
    if not personality_id:
        return turns.c.channel_id == channel_id
    return sa.and_(turns.c.channel_id == channel_id, turns.c.personality_id == personality_id)


_TURN_NAMES = ", ".join(column.name for column in _COLUMNS)
_INSERTED = (
    "job_id, position, channel_id, personality_id, user_id, role, author_id, author_name,"
    " content, message_ids, attachments, created_at"
)
_NEW_TURN = (
    "SELECT :job_id, position, :channel_id, :personality_id, :user_id, role, author_id,"
    " author_name, content, message_ids, attachments, coalesce(:occurred_at, now())"
    " FROM new_turns"
)
_STORE_EXCHANGE = direct.Statement(
    sa.text(
        # The turns arrive as one JSON array (a turn's message_ids and attachments are lists).
        "WITH new_turns AS MATERIALIZED ("  # noqa: S608 - the names are ours; values are bound
        " SELECT * FROM jsonb_to_recordset(:turns) AS x(position smallint, role text,"
        "  author_id text, author_name text, content text, message_ids text[], attachments jsonb)"
        # Position 0 first: a job stored before (or by a concurrent call, which this insert
        # waits for on the unique index) conflicts here, and then no other turn is inserted,
        # so an exchange is stored whole or not at all.
        f"), first AS (INSERT INTO memory.turns ({_INSERTED})"
        f" {_NEW_TURN} WHERE position = 0"
        "  AND NOT EXISTS (SELECT 1 FROM memory.turns WHERE job_id = :job_id)"
        # A forgotten user or personality: nothing is stored (tombstones.py says why a
        # forget committing meanwhile cannot slip between this check and the insert).
        f"  AND NOT {forgotten_sql(':personality_id', ':user_id')}"
        f" ON CONFLICT (job_id, position) DO NOTHING RETURNING {_TURN_NAMES}"
        f"), rest AS (INSERT INTO memory.turns ({_INSERTED})"
        f" {_NEW_TURN} WHERE position > 0 AND EXISTS (SELECT 1 FROM first)"
        f" ON CONFLICT (job_id, position) DO NOTHING RETURNING {_TURN_NAMES}"
        "), stored AS (SELECT * FROM first UNION ALL SELECT * FROM rest"
        "), created AS (SELECT count(*) = :n AS ok FROM stored"
        # The memory mode is read in this statement: an exchange made while incognito gets
        # no outbox row (nothing is ever formed or extracted from it), however the mode
        # changes before the workers run. An imported history brings its own summaries.
        "), incognito AS (SELECT EXISTS (SELECT 1 FROM memory.memory_modes"
        "  WHERE personality_id = :personality_id AND user_id = :user_id"
        "  AND incognito_until > now()) AS now"
        # The outbox rows commit with the turns: a crash cannot lose the exchange's memories.
        "), outbox AS (INSERT INTO memory.formation_outbox (job_id)"
        " SELECT :job_id FROM created, incognito WHERE created.ok AND :form AND NOT incognito.now"
        " ON CONFLICT (job_id) DO NOTHING"
        "), facts AS (INSERT INTO memory.fact_outbox (job_id, personality_id, user_id)"
        " SELECT :job_id, :personality_id, :user_id FROM created, incognito"
        " WHERE created.ok AND :extract AND NOT incognito.now"
        " ON CONFLICT (job_id) DO NOTHING"
        "), uses AS (INSERT INTO memory.memory_uses (job_id, memory_ids)"
        " SELECT :job_id, :used FROM created WHERE created.ok AND cardinality(:used) > 0"
        " ON CONFLICT (job_id) DO NOTHING"
        ") SELECT * FROM stored ORDER BY position"
    ).bindparams(
        sa.bindparam("turns", type_=JSONB),
        sa.bindparam("occurred_at", type_=sa.DateTime(timezone=True)),
        sa.bindparam("used", type_=ARRAY(UUID(as_uuid=True))),
        sa.bindparam("n", type_=sa.Integer),
        sa.bindparam("form", type_=sa.Boolean),
        sa.bindparam("extract", type_=sa.Boolean),
    )
)
"""StoreExchange in one statement: the turns, whole or not at all, and their outbox rows."""


@functools.cache
def _history_statement(one_personality: bool, before: bool, cursor: bool) -> direct.Statement:
    """GetHistory's statement, built once per shape (values bound at each call): building
    and keying a select per call cost more CPU than the rest of the call."""
    where = [turns.c.channel_id == sa.bindparam("channel_id")]
    if one_personality:  # else every personality's turns in the channel
        where.append(turns.c.personality_id == sa.bindparam("personality_id"))
    if before:
        where.append(turns.c.created_at < sa.bindparam("before", type_=turns.c.created_at.type))
    if cursor:
        # Row comparison on the full sort key: resumes inside a cut exchange.
        where.append(
            sa.tuple_(*_OLDEST_FIRST)
            < sa.tuple_(
                sa.bindparam("cursor_at", type_=turns.c.created_at.type),
                sa.bindparam("cursor_job", type_=turns.c.job_id.type),
                sa.bindparam("cursor_position", type_=turns.c.position.type),
            )
        )
    return direct.Statement(
        sa.select(*_COLUMNS)
        .where(*where)
        .order_by(*_NEWEST_FIRST)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


class PostgresTurnStore:
    """All of memory's history SQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Lone statements need no BEGIN/COMMIT around them (tzurot.db.engine.autocommit).
        self._auto = autocommit(engine)

    async def store_exchange(self, exchange: Exchange) -> StoredExchange:
        """Stores the exchange, its outbox rows and its uses in one statement (one round trip).

        A repeated job stores nothing and reads back what the first call stored (a second
        statement, on that path only: the first statement's snapshot predates a concurrent
        writer it waited for). A forgotten user or personality stores nothing and reads back
        nothing (created False, no turns).
        """
        params = {
            "job_id": exchange.job_id,
            "channel_id": exchange.channel_id,
            "personality_id": exchange.personality_id,
            "user_id": exchange.user_id,
            "turns": [
                {
                    "position": position,
                    "role": turn.role,
                    "author_id": turn.author_id,
                    "author_name": turn.author_name,
                    "content": turn.content,
                    "message_ids": list(turn.message_ids),
                    "attachments": [_attachment_json(a) for a in turn.attachments],
                }
                for position, turn in enumerate(exchange.turns)
            ],
            "occurred_at": exchange.occurred_at,
            "n": len(exchange.turns),
            "form": not exchange.imported,
            "extract": exchange.extract_facts and bool(exchange.user_id),
            "used": [uuid.UUID(i) for i in exchange.used_memory_ids],
        }
        rows = await direct.fetch(self._auto, _STORE_EXCHANGE, params)
        stored = stored_turns(rows)
        if len(stored) == len(exchange.turns):
            return StoredExchange(turns=stored, created=True)
        # The job was stored before (possibly with other turns): keep only that.
        read_back = sa.select(*_COLUMNS).where(turns.c.job_id == exchange.job_id)
        read_back = read_back.order_by(turns.c.position)
        async with self._auto.connect() as conn:
            stored = [stored_turn(row) for row in (await conn.execute(read_back)).mappings()]
        return StoredExchange(turns=stored, created=False)

    async def history(
        self,
        channel_id: str,
        personality_id: str,
        limit: int,
        before: datetime | None = None,
        cursor: HistoryCursor | None = None,
    ) -> list[StoredTurn]:
        stmt = _history_statement(bool(personality_id), before is not None, cursor is not None)
        params: dict[str, Any] = {
            "channel_id": channel_id,
            "personality_id": personality_id,
            "before": before,
            "limit": limit,
        }
        if cursor is not None:
            params |= {
                "cursor_at": cursor.created_at,
                "cursor_job": cursor.job_id,
                "cursor_position": cursor.position,
            }
        newest_first = stored_turns(await direct.fetch(self._auto, stmt, params))
        return newest_first[::-1]

    async def prune(self, older_than: datetime) -> int:
        """Deletes every turn created before `older_than`, in batches; the count deleted."""
        batch = (
            sa.select(turns.c.id)
            .where(turns.c.created_at < older_than)
            .limit(PRUNE_BATCH)
            .scalar_subquery()
        )
        deleted = 0
        while (count := await self._delete(sa.delete(turns).where(turns.c.id.in_(batch)))) > 0:
            deleted += count
        return deleted

    async def jobs_turns(self, job_ids: Sequence[str]) -> dict[str, list[StoredTurn]]:
        """The turns stored for each job, in order (a job deleted since has none)."""
        stmt = (
            sa.select(*_COLUMNS)
            .where(turns.c.job_id.in_(list(job_ids)))
            .order_by(turns.c.job_id, turns.c.position)
        )
        found: dict[str, list[StoredTurn]] = {job_id: [] for job_id in job_ids}
        async with self._auto.connect() as conn:
            for row in (await conn.execute(stmt)).mappings():
                found[row["job_id"]].append(stored_turn(row))
        return found

    async def find_by_message_ids(self, message_ids: Sequence[str]) -> list[StoredTurn]:
        stmt = (
            sa.select(*_COLUMNS)
            .where(turns.c.message_ids.overlap(list(message_ids)))
            .order_by(*_OLDEST_FIRST)
        )
        async with self._auto.connect() as conn:
            return [stored_turn(row) for row in (await conn.execute(stmt)).mappings()]

    async def edit_content(
        self, message_id: str, content: str, job_id: str = ""
    ) -> StoredTurn | None:
        where = [turns.c.message_ids.contains([message_id])]
        if job_id:
            where.append(turns.c.job_id == job_id)
        target = (
            sa.select(turns.c.id).where(*where).order_by(*_NEWEST_FIRST).limit(1).scalar_subquery()
        )
        stmt = (
            sa.update(turns)
            .where(turns.c.id == target)
            .values(content=content)
            .returning(*_COLUMNS)
        )
        async with self._auto.begin() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else stored_turn(row)

    async def delete_by_message_ids(self, message_ids: Sequence[str]) -> int:
        stmt = sa.delete(turns).where(turns.c.message_ids.overlap(list(message_ids)))
        return await self._delete(stmt)

    async def clear(self, channel_id: str, personality_id: str, user_id: str = "") -> int:
        """The conversation's turns, or only those of `user_id`'s exchanges."""
        place = _conversation(channel_id, personality_id)
        if user_id:
            place = sa.and_(place, turns.c.user_id == user_id)
        return await self._delete(sa.delete(turns).where(place))

    async def remove_last_exchange(
        self, channel_id: str, personality_id: str, user_id: str
    ) -> list[StoredTurn]:
        place = _conversation(channel_id, personality_id)
        newest_job = (
            sa.select(turns.c.job_id)
            .where(place, turns.c.user_id == user_id)
            .order_by(turns.c.created_at.desc(), turns.c.job_id.desc())
            .limit(1)
            .scalar_subquery()
        )
        stmt = sa.delete(turns).where(place, turns.c.job_id == newest_job).returning(*_COLUMNS)
        async with self._auto.begin() as conn:
            removed = [stored_turn(row) for row in (await conn.execute(stmt)).mappings()]
        return sorted(removed, key=lambda turn: turn.position)

    async def user_turns(self, user_id: str) -> list[StoredTurn]:
        """Every turn of the user's exchanges, oldest first."""
        stmt = sa.select(*_COLUMNS).where(turns.c.user_id == user_id).order_by(*_OLDEST_FIRST)
        async with self._auto.connect() as conn:
            return [stored_turn(row) for row in (await conn.execute(stmt)).mappings()]

    async def _delete(self, stmt: sa.Delete) -> int:
        async with self._auto.begin() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)
