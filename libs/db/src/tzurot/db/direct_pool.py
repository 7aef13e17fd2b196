"""The direct path's own connections: asyncpg's, with no SQLAlchemy pool between (issue 16).

Checking a connection out of the engine's pool and back in costs two greenlet switches and
the pool's events: ~200-250 µs of CPU a statement inside real turns, as much as the statement.
`create_engine` gives a share of its connections to a `DirectPool`, which `tzurot.db.direct`
uses instead: a list of idle asyncpg connections and a semaphore, nothing to switch to.

It keeps what the engine's pool does for a connection: the engine's connect arguments (URL,
timeout, server settings) and SQLAlchemy's JSON/JSONB codecs, set-ups added later on every
connection (`on_connect`: memory's HNSW settings, the warm-up's statements), a ping before
handing out one idle for `ping_after_idle` seconds (a dead one is dropped and another taken:
no statement is sent on it), recycling after `recycle` seconds, a wait of at most `timeout`
seconds for a free connection (then SQLAlchemy's `TimeoutError`), LIFO reuse. A connection
known closed, left in a transaction, given back as broken (`release(discard=True)`: it died
during a statement, or its use was interrupted) or opened before the last `dispose` is
dropped; a statement is never retried.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from weakref import WeakKeyDictionary, WeakSet

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type hints
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine

_SQLALCHEMY_ONLY = ("prepared_statement_cache_size", "prepared_statement_name_func")
"""Connect arguments the asyncpg dialect takes for its own adapter, not for asyncpg."""


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """An asyncpg connection with what the pool knows of it."""

    __slots__ = ("generation", "last_used", "opened_at", "setups_run")

    generation: int
    """The pool's `dispose` count when it was opened: one opened before the last is closed."""
    opened_at: float
    last_used: float
    setups_run: int


Setup = Callable[[PooledConnection], Awaitable[None]]
Connect = Callable[[], Awaitable[PooledConnection]]


class DirectPool:
    """Up to `size` asyncpg connections, opened when needed and kept (see the module)."""

    def __init__(
        self,
        connect: Connect,
        *,
        size: int,
        ping_after_idle: float,
        recycle: float,
        timeout: float,
    ) -> None:
        if size < 1:
            raise ValueError("a direct pool holds at least one connection")
        self.size = size
        self._connect = connect
        self._ping_after_idle = ping_after_idle
        self._recycle = recycle
        self._timeout = timeout
        self._slots = asyncio.Semaphore(size)
        self._idle: list[PooledConnection] = []
        self._open: set[PooledConnection] = set()
        self._held = 0  # slots taken: connections handed out, or being opened for a use
        self._generation = 0  # dispose calls so far
        self._setups: list[tuple[Setup, WeakSet[PooledConnection]]] = []
        self.watchers: list[Callable[[PooledConnection], None]] = []
        """Called with each connection handed out (the warm-up records statements)."""

    @property
    def in_use(self) -> int:
        """Uses under way: connections handed out and not back yet, or being opened."""
        return self._held

    @property
    def opened(self) -> int:
        """Connections open now (in use or idle)."""
        return len(self._open)

    def on_connect(self, setup: Setup, *, skip: Iterable[PooledConnection] = ()) -> None:
        """Runs `setup` on every connection but those in `skip` before its next use (once
        each): those opened later, and those open now. A setup that fails drops the
        connection and fails the statement, as a failing engine `connect`/`checkout` event
        does."""
        self._setups.append((setup, WeakSet(skip)))

    async def acquire(self) -> PooledConnection:
        """A connection for one use; give it back with `release`."""
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(self._timeout):
                    await slots.acquire()
            except TimeoutError:
                raise sa_exc.TimeoutError(
                    f"all {self.size} connections of the direct pool are in use; "
                    f"waited {self._timeout:g} s"
                ) from None
        else:
            await slots.acquire()  # free: returns without suspending
        self._held += 1
        try:
            conn = await self._take()
        except BaseException:
            self._held -= 1
            slots.release()
            raise
        try:
            for watch in self.watchers:
                watch(conn)
        except BaseException:
            self.release(conn, discard=True)
            raise
        return conn

    def release(self, conn: PooledConnection, *, discard: bool = False) -> None:
        """Takes `conn` back (no await: safe in a cancelled task's cleanup). A connection
        closed, left in a transaction, from before `dispose`, or given back with `discard`
        (it broke, or its use was interrupted) is closed instead."""
        conn.last_used = time.monotonic()
        if discard or not self._reusable(conn):
            self._drop(conn)
        else:
            self._idle.append(conn)
        self._held -= 1
        self._slots.release()

    def _reusable(self, conn: PooledConnection) -> bool:
        return (
            conn.generation == self._generation
            and conn in self._open
            and not conn.is_closed()
            and not conn.is_in_transaction()
        )

    async def dispose(self) -> None:
        """Closes every connection: the idle ones gracefully, the ones in use at once (their
        statements fail; one being opened is closed when given back). The pool stays usable:
        later uses open new connections."""
        self._generation += 1
        idle, self._idle = self._idle, []
        in_use, self._open = self._open.difference(idle), set()
        for conn in in_use:
            conn.terminate()
        await asyncio.gather(*(_close(conn) for conn in idle))

    def terminate(self) -> None:
        """Closes every connection at once (outside an event loop's coroutine)."""
        self._generation += 1
        connections, self._open, self._idle = self._open, set(), []
        for conn in connections:
            conn.terminate()

    async def _take(self) -> PooledConnection:
        now = time.monotonic()
        idle = self._idle
        while idle:
            conn = idle.pop()
            try:
                if not self._reusable(conn):  # closed, or a use interrupted in BEGIN
                    self._drop(conn)
                    continue
                if now - conn.opened_at >= self._recycle:
                    self._open.discard(conn)
                    await _close(conn)
                    continue
                if now - conn.last_used >= self._ping_after_idle and not await _alive(conn):
                    self._drop(conn)
                    continue
                if conn.setups_run < len(self._setups):
                    await self._set_up(conn)
            except BaseException:
                self._drop(conn)
                raise
            return conn
        generation = self._generation
        conn = await self._connect()
        conn.generation = generation  # older than the pool's if it was disposed meanwhile
        self._open.add(conn)
        try:
            await self._set_up(conn)
        except BaseException:
            self._drop(conn)
            raise
        return conn

    async def _set_up(self, conn: PooledConnection) -> None:
        setups = self._setups
        while conn.setups_run < len(setups):
            setup, skip = setups[conn.setups_run]
            if conn not in skip:
                await setup(conn)
            conn.setups_run += 1

    def _drop(self, conn: PooledConnection) -> None:
        self._open.discard(conn)
        conn.terminate()


async def _alive(conn: PooledConnection) -> bool:
    """Whether `conn` answers an empty statement (the engine pool's ping)."""
    try:
        await conn.fetchrow(";")
    except Exception:  # whatever failed, the connection is not one to hand out
        return False
    return True


async def _close(conn: PooledConnection) -> None:
    """Closes `conn` gracefully, or at once when that fails."""
    try:
        await conn.close(timeout=2)
    except Exception:
        conn.terminate()


def connector(
    dialect: Dialect, url: Any, connect_args: Mapping[str, Any], *, timeout: float
) -> Connect:
    """Opens connections as the engine of `dialect` and `url` does: the same asyncpg
    arguments, SQLAlchemy's JSON/JSONB codecs (its dialect's `on_connect`), connect errors
    translated to the dialect's DBAPI errors as the engine pool's connect raises them."""
    _, params = dialect.create_connect_args(url)
    arguments = {**params, **connect_args, "timeout": timeout}
    for key in _SQLALCHEMY_ONLY:
        arguments.pop(key, None)
    loads = getattr(dialect, "_json_deserializer", None) or json.loads
    dbapi = dialect.loaded_dbapi

    async def connect() -> PooledConnection:
        try:
            conn: PooledConnection = await asyncpg.connect(
                **arguments, connection_class=PooledConnection
            )
        except Exception as error:
            AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, error)
        try:
            await _json_codecs(conn, loads)
        except BaseException:
            conn.terminate()
            raise
        conn.opened_at = conn.last_used = time.monotonic()
        conn.setups_run = 0
        return conn

    return connect


async def _json_codecs(conn: asyncpg.Connection, loads: Callable[[str], Any]) -> None:
    """SQLAlchemy's asyncpg codecs: binary, values in as the JSON text its bind processors
    make, out as Python objects (`setup_asyncpg_json_codec`, `…_jsonb_codec`)."""
    await conn.set_type_codec(
        "json",
        encoder=str.encode,
        decoder=lambda data: loads(data.decode()),
        schema="pg_catalog",
        format="binary",
    )
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda text: b"\x01" + text.encode(),  # jsonb's binary format version
        decoder=lambda data: loads(data[1:].decode()),
        schema="pg_catalog",
        format="binary",
    )


_POOLS: WeakKeyDictionary[Dialect, DirectPool] = WeakKeyDictionary()
"""Each engine's direct pool, by its dialect: one per `create_engine`, shared by the engines
`execution_options` derives from it (`autocommit`), kept across `dispose`."""


def attach(engine: AsyncEngine, pool: DirectPool) -> None:
    """Makes `pool` the direct pool of `engine` (and of the engines derived from it)."""
    _POOLS[engine.dialect] = pool


def pool_for(dialect: Dialect) -> DirectPool | None:
    """The direct pool of the engine of `dialect`; None when its direct statements use the
    engine's own pool."""
    return _POOLS.get(dialect)
