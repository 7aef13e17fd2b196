"""Deletions under way (admin/deletions.py): marking a user or a personality as being deleted,
and the lease on one that whoever finishes it (the request, else a sweep) holds; and the
voices cloned for what a deletion takes, deleted from ElevenLabs before it is recorded.

The marks live on the rows the deletions remove last (`deletion_requested_at`, migration
0019), so a finished deletion leaves nothing behind, and one cut short leaves its mark for
any replica's sweep. Times are Postgres' `now()`: every replica agrees on a lease.

A user's key writes and her deletion's mark are serialised (`KeyWriteFence`): keys live in
keyvault, which knows nothing of deletions, and a `/wallet set` checks the mark, asks the
provider about the key (seconds), then has keyvault store it. A deletion that removed her
keys in between left the key written after it in keyvault, for a user no longer there. So a
key is written holding her key-write lock, shared (several writes at once), with the mark
read under it; the mark takes the lock exclusive, waiting for the writes under way, before it
is recorded. Either the write sees the mark (or the user gone) and is refused before keyvault
is asked, or the mark waits until keyvault has the key, and the deletion, which lists her
keys after its mark, removes it. Transaction-level advisory locks: every replica sees them,
and a gateway that dies mid-write releases its lock with its connection. The lock is held for
keyvault's call only (its deadline bounds how long a deletion waits), never for the provider's
check of the key. Why here and not elsewhere: keyvault re-checking the mark would make the
holder of the master key read gateway's tables, and a sweep for keys written after a deletion
would compare every user id keyvault holds with gateway's users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID

from tzurot.gateway import tables as t
from tzurot.gateway.store.base import AdminSqlBase, SqlBase

Kind = Literal["user", "personality"]

_TABLES = {"user": t.users, "personality": t.personalities}
_KEY_WRITE_LOCKS = 0x6B657973  # "keys": a user's key writes (shared) against her deletion's mark


class Clone(NamedTuple):
    """A voice cloned with /personality voice clone: in its cloner's ElevenLabs account."""

    cloner_id: str
    personality_id: str
    voice_id: str


def _until(seconds: float) -> sa.ColumnElement[Any]:
    """`now()` plus that many seconds."""
    return sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


class DeletionQueries(AdminSqlBase):
    async def mark_user_deleting(
        self,
        user_id: str,
        lease_seconds: float,
        cloners: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        """Marks the user, and their private personalities (the deletion forgets them too), as
        being deleted (kept from a first mark), held by the caller for `lease_seconds`;
        `cloners`, by private personality: whose recorded clones of it the deletion deleted
        (kept in `deletion_cloners`, for its lost clones)."""
        p = t.personalities.c
        async with self._catalog_write() as conn:
            # Waits for her key writes under way (KeyWriteFence): each either saw no mark and
            # its key is in keyvault by now, for the deletion to remove; later ones see it.
            await conn.execute(_key_write_lock(user_id, shared=False))
            await conn.execute(_mark(t.users, t.users.c.id == user_id, lease_seconds))
            private = sa.and_(p.owner_user_id == user_id, sa.not_(p.public))
            await conn.execute(_mark(t.personalities, private, lease_seconds))
            for personality_id, ids in sorted((cloners or {}).items()):
                await conn.execute(_cloners_kept(sa.and_(private, p.id == personality_id), ids))

    async def mark_personality_deleting(
        self, personality_id: str, lease_seconds: float, cloners: Collection[str] = ()
    ) -> None:
        """Marks the personality as being deleted, held by the caller for `lease_seconds`;
        `cloners`: whose recorded clones of it the deletion deleted (kept in
        `deletion_cloners`: a retry of its lost-clone step still lists their accounts)."""
        this = t.personalities.c.id == personality_id
        async with self._catalog_write() as conn:
            await conn.execute(_mark(t.personalities, this, lease_seconds))
            await conn.execute(_cloners_kept(this, cloners))

    async def release_deletion(self, kind: Kind, target_id: str, after: float = 0.0) -> None:
        """Hands the deletion to the sweeps `after` seconds from now (a user's, with the
        private personalities marked with it)."""
        table = _TABLES[kind]
        targets = [(table, table.c.id == target_id)]
        if kind == "user":
            targets.append((t.personalities, t.personalities.c.owner_user_id == target_id))
        async with self._engine.begin() as conn:
            for marked, which in targets:
                await conn.execute(
                    sa.update(marked)
                    .where(which, marked.c.deletion_requested_at.is_not(None))
                    .values(deletion_lease_until=_until(after))
                )

    async def claim_deletion(self, kind: Kind, lease_seconds: float) -> str | None:
        """The oldest deletion of that kind nobody holds (its lease ran out: its request died
        or failed), now held for `lease_seconds`; None when there is none. FOR UPDATE SKIP
        LOCKED: two replicas' sweeps never claim the same one."""
        table = _TABLES[kind]
        c = table.c
        free = (
            sa.select(c.id)
            .where(
                c.deletion_requested_at.is_not(None),
                sa.or_(c.deletion_lease_until.is_(None), c.deletion_lease_until <= sa.func.now()),
            )
            .order_by(c.deletion_requested_at, c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = (
            sa.update(table)
            .where(c.id == free)
            .values(deletion_lease_until=_until(lease_seconds))
            .returning(c.id)
        )
        async with self._autocommit.connect() as conn:  # one statement: its own transaction
            claimed = await conn.scalar(stmt)
        return None if claimed is None else str(claimed)

    async def pending_deletions(self, kind: Kind) -> tuple[int, float]:
        """How many deletions of that kind are under way (held or not), and the seconds since
        the oldest was asked for (0 when none); from the partial index of the marks."""
        c = _TABLES[kind].c
        age = sa.func.extract("epoch", sa.func.now() - sa.func.min(c.deletion_requested_at))
        stmt = sa.select(sa.func.count(), sa.func.coalesce(age, 0)).where(
            c.deletion_requested_at.is_not(None)
        )
        async with self._autocommit.connect() as conn:
            count, oldest = (await conn.execute(stmt)).one()
        return int(count), float(oldest)


class KeyWriteFence(SqlBase):
    @asynccontextmanager
    async def key_write(self, user_id: str) -> AsyncIterator[bool]:
        """Held while one of the user's keys is written to keyvault: whether she is still
        there and not being deleted (False: write nothing). While True, her deletion cannot
        be recorded until the block ends (the module says why). A transaction holding a
        connection for the block: keep it to the keyvault call."""
        u = t.users.c
        async with self._engine.begin() as conn:
            await conn.execute(_key_write_lock(user_id, shared=True))
            # Its own statement, after the lock: READ COMMITTED reads a mark recorded while
            # this one waited for the lock.
            stays = await conn.scalar(
                sa.select(sa.exists().where(u.id == user_id, u.deletion_requested_at.is_(None)))
            )
            yield bool(stays)


def _key_write_lock(user_id: str, *, shared: bool) -> sa.Select[Any]:
    """Waits for the user's key-write lock, held until the transaction ends."""
    lock = sa.func.pg_advisory_xact_lock_shared if shared else sa.func.pg_advisory_xact_lock
    return sa.select(lock(_KEY_WRITE_LOCKS, sa.func.hashtext(user_id)))


def _cloners_kept(which: sa.ColumnElement[bool], cloners: Collection[str]) -> sa.Update:
    """Adds `cloners` to the personalities' `deletion_cloners` (those there stay: a second
    mark keeps the first's)."""
    c = t.personalities.c
    new = sa.cast(sa.literal(sorted(set(cloners)), ARRAY(sa.Text)), ARRAY(UUID(as_uuid=False)))
    return (
        sa.update(t.personalities)
        .where(which, sa.not_(c.deletion_cloners.contains(new)))
        .values(deletion_cloners=c.deletion_cloners.concat(new))
    )


def _mark(table: sa.Table, which: sa.ColumnElement[bool], lease_seconds: float) -> sa.Update:
    c = table.c
    return (
        sa.update(table)
        .where(which)
        .values(
            deletion_requested_at=sa.func.coalesce(c.deletion_requested_at, sa.func.now()),
            deletion_lease_until=_until(lease_seconds),
        )
    )
