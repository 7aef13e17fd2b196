"""One at a time per cloned voice: a clone, and a deletion that deletes the clones of what it
deletes (a personality, or a user's data with her private personalities).

Why: a deletion looks the clones up, deletes them from ElevenLabs, then records itself (from
then on no lookup finds what it deletes). A clone saved after that lookup stayed in its
cloner's ElevenLabs account (a slot of a paid plan) with nothing pointing at it; and a second
clone of a personality at once would make two voices.

How: session advisory locks on a connection of their own, held for the block (every replica
sees them; a process that dies releases them with its connection). Each is tried, never
waited for (two callers cannot deadlock; the one that comes second is told):
- per personality, exclusive: a clone of it; a deletion of it, or of its owner's data;
- per user, shared by the clones she makes, exclusive for her data deletion.
A deletion holds them over its lookup, the deletes at ElevenLabs and its record. A clone
re-reads under them that neither the personality nor the cloner is being deleted: a deletion
whose locked part ran between the clone's lookup of the personality (perhaps from another
replica's catalog, seconds old) and its locks has been recorded by then.

Who holds a lock is not asked of Postgres: a deletion also takes a marker per thing it
deletes (each personality, the user), first, so a caller refused a lock tells the two apart by
the marker: a deletion refused by another deletion of what it deletes is told so (not "a voice
is being cloned"), and a clone refused while its personality is being deleted is told it is
gone (not "try again").
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import OID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.db.engine import autocommit
from tzurot.gateway import tables as t

CLONE_IN_PROGRESS = "CLONE_IN_PROGRESS"
"""The refusal's reason when the other one (a clone, or a deletion of what it clones for) is
under way: nothing was done, asking again once it is over does it."""

DELETION_IN_PROGRESS = "DELETION_IN_PROGRESS"
"""A deletion's refusal when another deletion of what it deletes holds the locks: nothing
was done by this one; the other goes on (what is left asked again once it is over)."""

_PERSONALITY_LOCKS = 0x766F6963  # "voic": a personality's voice being cloned or deleted
_CLONER_LOCKS = 0x766F6375  # "vocu": a user's clones (shared) against her data deletion
_PERSONALITY_DELETIONS = 0x7064656C  # "pdel": a deletion of the personality (marker)
_USER_DELETIONS = 0x7564656C  # "udel": a deletion of the user's data (marker)


class CloneStart(enum.Enum):
    """Whether a clone may go on, and why not."""

    HELD = "held"
    """Both locks held, the personality and the cloner stay: clone it."""
    BUSY = "busy"
    """The personality's lock is held elsewhere: another clone of it, or its deletion."""
    PERSONALITY_DELETED = "personality_deleted"
    """The personality is being deleted, or is gone."""
    CLONER_DELETING = "cloner_deleting"
    """The cloner's data is being deleted (or is gone)."""


class DeletionStart(enum.Enum):
    """Whether a deletion may go on, and why not."""

    HELD = "held"
    """Every lock held: no clone of what it deletes starts until the block ends."""
    DELETING = "deleting"
    """Another deletion of (some of) what it deletes is under way."""
    CLONING = "cloning"
    """A clone of (or by) what it deletes is under way."""


@dataclass(frozen=True)
class _Lock:
    space: int
    name: str
    shared: bool = False

    def tried(self) -> sa.Select[tuple[bool]]:
        attempt = (
            sa.func.pg_try_advisory_lock_shared if self.shared else sa.func.pg_try_advisory_lock
        )
        return sa.select(attempt(self.space, sa.func.hashtext(self.name), type_=sa.Boolean))


def _personality(personality_id: str) -> _Lock:
    return _Lock(_PERSONALITY_LOCKS, personality_id)


def _personality_deletion(personality_id: str) -> _Lock:
    return _Lock(_PERSONALITY_DELETIONS, personality_id)


class CloneLocks:
    def __init__(self, engine: AsyncEngine) -> None:
        self._autocommit = autocommit(engine)

    @asynccontextmanager
    async def cloning(self, personality_id: str, cloner_id: str) -> AsyncIterator[CloneStart]:
        """For a clone of the personality by `cloner_id`: whether it may go on (HELD: no
        other clone of it and no deletion of it or of the cloner's data can start until the
        block ends)."""
        locks = (_personality(personality_id), _Lock(_CLONER_LOCKS, cloner_id, shared=True))
        async with self._held(locks) as (conn, taken):
            if taken == 0:
                deleting = await _held_elsewhere(
                    conn, _personality_deletion(personality_id), with_lock=locks[0]
                )
                yield CloneStart.PERSONALITY_DELETED if deleting else CloneStart.BUSY
            elif taken == 1:
                yield CloneStart.CLONER_DELETING
            else:
                yield await _still_there(conn, personality_id, cloner_id)

    @asynccontextmanager
    async def deleting(
        self, personality_ids: Sequence[str], *, user_id: str | None = None
    ) -> AsyncIterator[DeletionStart]:
        """For a deletion of these personalities (and of `user_id`'s data): whether no other
        deletion of them and no clone of them (or by her) is under way; while HELD, none
        starts until the block ends."""
        markers = [_personality_deletion(pid) for pid in personality_ids]
        locks = [_personality(pid) for pid in personality_ids]
        if user_id is not None:
            markers.insert(0, _Lock(_USER_DELETIONS, user_id))
            locks.insert(0, _Lock(_CLONER_LOCKS, user_id))
        async with self._held([*markers, *locks]) as (_, taken):
            if taken < len(markers):
                yield DeletionStart.DELETING
            elif taken < len(markers) + len(locks):
                yield DeletionStart.CLONING
            else:
                yield DeletionStart.HELD

    @asynccontextmanager
    async def _held(self, locks: Sequence[_Lock]) -> AsyncIterator[tuple[AsyncConnection, int]]:
        """Tries the locks in order, stopping at the first held elsewhere; yields the
        connection and how many it took, and releases them after the block."""
        async with self._autocommit.connect() as conn:
            taken = 0
            try:
                for lock in locks:
                    if not await conn.scalar(lock.tried()):
                        break
                    taken += 1
                yield conn, taken
            finally:
                try:
                    # Ours alone: the connection is this block's from the start to the end.
                    await conn.scalar(sa.select(sa.func.pg_advisory_unlock_all()))
                except BaseException:
                    # Never back to the pool still holding a lock: closing the session
                    # releases them.
                    await conn.invalidate()
                    raise


def _pg_locks() -> sa.TableClause:
    return sa.table(
        "pg_locks",
        sa.column("locktype"),
        sa.column("database"),
        sa.column("classid"),
        sa.column("objid"),
        sa.column("objsubid"),
        sa.column("granted"),
        sa.column("pid"),
    )


def _holding(locks: sa.FromClause, lock: _Lock) -> sa.ColumnElement[bool]:
    """`locks` (a `pg_locks` alias) is `lock`, granted, in this database (advisory locks are
    per database; pg_locks lists the whole server's). A two-key advisory lock is listed with
    its keys as classid and objid (unsigned: the oid of the int4), objsubid 2."""
    c = locks.c
    this_database = (
        sa.select(sa.column("oid", OID))
        .select_from(sa.table("pg_database", sa.column("datname")))
        .where(sa.column("datname") == sa.func.current_database())
        .scalar_subquery()
    )
    return sa.and_(
        c.locktype == "advisory",
        c.database == this_database,
        c.classid == sa.cast(lock.space, OID),
        c.objid == sa.cast(sa.func.hashtext(lock.name), OID),
        c.objsubid == 2,  # Postgres's mark of a two-key advisory lock
        c.granted,
    )


async def _held_elsewhere(conn: AsyncConnection, lock: _Lock, *, with_lock: _Lock) -> bool:
    """Whether another session holds both `lock` and `with_lock`, read from `pg_locks`, not
    by trying them: a probe that took a lock for a moment would make a deletion trying it
    then read "another deletion under way" and do nothing. Both, by one session: a deletion
    holding its marker but refused the personality's lock (a clone has it) holds nothing
    for long and deletes nothing."""
    first, second = _pg_locks().alias("first"), _pg_locks().alias("second")
    held = sa.exists().where(
        _holding(first, lock),
        _holding(second, with_lock),
        first.c.pid == second.c.pid,
        first.c.pid != sa.func.pg_backend_pid(),
    )
    return bool(await conn.scalar(sa.select(held)))


async def _still_there(conn: AsyncConnection, personality_id: str, cloner_id: str) -> CloneStart:
    """Read under the locks: no deletion of either can be recorded meanwhile."""
    p, u = t.personalities.c, t.users.c
    personality = sa.exists().where(p.id == personality_id, p.deletion_requested_at.is_(None))
    cloner = sa.exists().where(u.id == cloner_id, u.deletion_requested_at.is_(None))
    stays, cloner_stays = (await conn.execute(sa.select(personality, cloner))).one()
    if not cloner_stays:
        return CloneStart.CLONER_DELETING
    return CloneStart.HELD if stays else CloneStart.PERSONALITY_DELETED
