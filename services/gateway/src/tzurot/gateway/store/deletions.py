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

The same lock keeps a deletion that records a cloner (`deletion_cloners`: her lost clones are
deleted from her account, with her key) apart from that cloner's data deletion deleting her
keys (admin/deletions.py). A deletion holds its cloners' locks, shared, from its lookup of the
clones recorded for what it deletes to its mark (`DeletionQueries.marking`); her data deletion
deletes her keys holding hers, exclusive, after a last look at the deletions that kept her
(`DeletionQueries.keys_going`). So a deletion that found her a cloner is marked before that
look, which sees it, or it looked her clones up after her keys went, when her own deletion had
deleted those already. Lock order: a transaction takes every key-write lock it needs at its
start, by user id, and no other after (so none waits for another's while holding one it
wants); the deletion of her keys takes hers alone and waits on nothing of Postgres' while it
holds it; a deletion's deletes at ElevenLabs, under its locks, wait for voice locks
(voice_store.py), whose holders never wait for a key-write lock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

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


class DeletionMarking:
    """A deletion's mark to record, in a transaction holding the key-write locks of `held`
    (the cloners it may record; the deleting user's too, exclusive), committed at the end of
    `DeletionQueries.marking`'s block."""

    def __init__(self, conn: AsyncConnection, held: frozenset[str], deleting: str | None) -> None:
        self._conn = conn
        self._deleting = deleting
        self.held = held
        """The users whose key-write locks the transaction holds: the only cloners a mark
        may record."""

    async def mark_user(
        self, user_id: str, lease_seconds: float, cloners: Mapping[str, Collection[str]]
    ) -> None:
        """Marks the user, and their private personalities (the deletion forgets them too), as
        being deleted (kept from a first mark), held by the caller for `lease_seconds`;
        `cloners`, by private personality: whose recorded clones of it the deletion deleted
        (kept in `deletion_cloners`, for its lost clones). Her lock must be held (`marking`
        with `deleting_user`): her key writes under way wait for it (KeyWriteFence), each
        either saw no mark and its key is in keyvault by now, for the deletion to remove,
        or sees it."""
        if user_id != self._deleting:
            raise ValueError("her key-write lock is not held exclusive")
        self._holds(*(c for ids in cloners.values() for c in ids))
        p = t.personalities.c
        await self._conn.execute(_mark(t.users, t.users.c.id == user_id, lease_seconds))
        private = sa.and_(p.owner_user_id == user_id, sa.not_(p.public))
        await self._conn.execute(_mark(t.personalities, private, lease_seconds))
        for personality_id, ids in sorted(cloners.items()):
            await self._conn.execute(_cloners_kept(sa.and_(private, p.id == personality_id), ids))

    async def mark_personality(
        self, personality_id: str, lease_seconds: float, cloners: Collection[str]
    ) -> None:
        """Marks the personality as being deleted, held by the caller for `lease_seconds`;
        `cloners`: whose recorded clones of it the deletion deleted (kept in
        `deletion_cloners`: a retry of its lost-clone step still lists their accounts)."""
        self._holds(*cloners)
        this = t.personalities.c.id == personality_id
        await self._conn.execute(_mark(t.personalities, this, lease_seconds))
        await self._conn.execute(_cloners_kept(this, cloners))

    def _holds(self, *user_ids: str) -> None:
        if missing := set(user_ids) - self.held:
            raise ValueError(f"key-write locks not held for {sorted(missing)}")


class DeletionQueries(AdminSqlBase):
    @asynccontextmanager
    async def marking(
        self, cloners: Collection[str], *, deleting_user: str | None = None
    ) -> AsyncIterator[DeletionMarking]:
        """A transaction for a deletion's lookup, its deletes at ElevenLabs and its mark
        (committed at the block's end), holding the key-write locks of `cloners` (shared) and
        of `deleting_user` (exclusive: her data deletion), all taken first, by user id (the
        module says why). Meanwhile a data deletion of one of them deletes no key; one that
        is at it already is waited for (a lookup after it no longer finds her clones)."""
        held = frozenset({*cloners, *(() if deleting_user is None else (deleting_user,))})
        async with self._catalog_write() as conn:
            for user_id in sorted(held):
                await conn.execute(_key_write_lock(user_id, shared=user_id != deleting_user))
            yield DeletionMarking(conn, held, deleting_user)

    @asynccontextmanager
    async def keys_going(self, user_id: str) -> AsyncIterator[None]:
        """Held while a user's data deletion deletes her keys, after its last look at the
        deletions that kept her as a cloner: her key-write lock, exclusive, in a transaction
        of its own. A deletion marked after that look waited for the block to end (`marking`);
        hold nothing else of Postgres' meanwhile (nothing waits with it held)."""
        async with self._engine.begin() as conn:
            await conn.execute(_key_write_lock(user_id, shared=False))
            yield

    async def mark_user_deleting(
        self,
        user_id: str,
        lease_seconds: float,
        cloners: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        """`DeletionMarking.mark_user` in a transaction of its own."""
        cloners = cloners or {}
        ids = {c for found in cloners.values() for c in found}
        async with self.marking(ids, deleting_user=user_id) as marking:
            await marking.mark_user(user_id, lease_seconds, cloners)

    async def mark_personality_deleting(
        self, personality_id: str, lease_seconds: float, cloners: Collection[str] = ()
    ) -> None:
        """`DeletionMarking.mark_personality` in a transaction of its own."""
        async with self.marking(cloners) as marking:
            await marking.mark_personality(personality_id, lease_seconds, cloners)

    async def deletion_age(self, kind: Kind, target_id: str) -> float:
        """Seconds since the deletion of that user or personality was first marked; 0 when
        it is not marked (or gone)."""
        c = _TABLES[kind].c
        age = sa.func.extract("epoch", sa.func.now() - c.deletion_requested_at)
        stmt = sa.select(sa.func.coalesce(age, 0)).where(c.id == target_id)
        async with self._autocommit.connect() as conn:
            found = await conn.scalar(stmt)
        return float(found or 0)

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
