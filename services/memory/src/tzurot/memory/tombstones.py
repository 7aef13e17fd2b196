"""Tombstones: the users and personalities memory forgot (`memory.forgotten`), so that nothing
is stored for them afterwards, however late a writer comes (a confirmation whose job gateway
read just before the user's data was deleted; another gateway replica that still has a
deleted personality in its 5 s catalog cache).

A tombstone holds gateway's internal id and nothing else. Those ids are UUIDs Postgres makes
(`gen_random_uuid()`) and never reuses: a user who comes back after deleting their data is a
new `core.users` row with a new id, a personality created again under the same name a new
`core.personalities` row. So a tombstone is never lifted.

Why no writer slips past a forget, under READ COMMITTED:

- Every write of rows keyed by a user or a personality checks the tombstones in the statement
  that writes (`NOT EXISTS` over `memory.forgotten`, `forgotten_sql` / `forgotten_clause`);
  in a transaction of several statements, in its first (its lock then covers the rest: a
  StoreFacts). Naming the table, the statement
  takes ACCESS SHARE on it when it is bound, *before* its snapshot is taken (Postgres takes
  an execution snapshot after locking the statement's tables), and keeps it until its
  transaction ends.
- A forget first records the tombstone in a short transaction of its own (`record`): it takes
  ACCESS EXCLUSIVE on `memory.forgotten` (`LOCK`), writes the tombstone and commits. Then it
  deletes, in a second transaction.

So a writer either held its lock before the forget asked: the tombstone's transaction waits
for it to commit, and the deletes, which start after that, see what it wrote and delete it;
or it asked after: it waits for the tombstone to commit, and its snapshot, taken then, sees
it, so it writes nothing. A writer asks for the table lock before any row lock (first
statement), so the two never deadlock. Writers wait only for the tombstone's transaction
(one insert), never for the deletes (a personality's scans `turns`). A forget that fails
between the two leaves the tombstone and the data: nothing more is stored for the id, and
asking again deletes the rest.

Updates of rows that exist (EditTurn, consolidation's merges, decay and reinforcement)
need no check: they create nothing, and the forget's delete of the same row
waits for them or they find it gone.
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.tables import forgotten
from tzurot.runtime.errors import FailedPrecondition

Kind = Literal["user", "personality"]

LOCK = sa.text("LOCK TABLE memory.forgotten IN ACCESS EXCLUSIVE MODE")
"""A forget's first statement: waits for every writer that checked the tombstones, and
holds back the next ones until the forget commits."""


def tombstone(kind: Kind, forgotten_id: str) -> sa.Insert:
    """Records the id as forgotten (a repeat changes nothing)."""
    return insert(forgotten).values(kind=kind, id=forgotten_id).on_conflict_do_nothing()


async def record(engine: AsyncEngine, kind: Kind, forgotten_id: str) -> None:
    """A forget's first transaction: once it commits, no writer stores anything more for the
    id, and every writer that checked before has committed (the deletes that follow see it)."""
    async with engine.begin() as conn:
        await conn.execute(LOCK)
        await conn.execute(tombstone(kind, forgotten_id))


def forgotten_sql(personality_id: str, user_id: str) -> str:
    """SQL that is true when the personality or the user (SQL expressions: parameters or
    columns) was forgotten. The channel's own turns and the shared lore have user '', never
    a tombstone."""
    return (
        "EXISTS (SELECT 1 FROM memory.forgotten WHERE (kind, id) IN"  # noqa: S608 - our SQL
        f" (('personality', {personality_id}), ('user', {user_id})))"
    )


def forgotten_clause(personality_id: str, *user_ids: str) -> sa.Exists:
    """`forgotten_sql` for SQLAlchemy statements, with values: the personality or any of the
    users was forgotten ('' is nobody)."""
    kinds = [sa.and_(forgotten.c.kind == "personality", forgotten.c.id == personality_id)]
    kinds += [
        sa.and_(forgotten.c.kind == "user", forgotten.c.id == user_id)
        for user_id in user_ids
        if user_id
    ]
    return sa.exists().where(sa.or_(*kinds))


class Forgotten(FailedPrecondition):
    """A write for a user or a personality memory has forgotten: nothing was stored."""

    default_reason = "FORGOTTEN"

    def __init__(self) -> None:
        super().__init__("this user or personality was deleted; nothing more is stored for it")
