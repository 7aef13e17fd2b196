"""One statement on a pooled connection, without SQLAlchemy's per-call execution machinery.

`async with engine.connect() as conn: await conn.execute(stmt, params)` costs ~0.5 ms of CPU
on this machine for a one-row statement (issue 16): an `AsyncConnection` and a `Connection`,
three greenlet switches, the execution context, pool and execute events, the cursor adapter and
the `Result`. asyncpg itself takes ~0.05 ms. A hot statement that is its own transaction (the
autocommit reads and writes of a turn) can skip all of it: `Statement` compiles a Core
statement (or takes SQL with `$n` parameters) once, and `fetch` / `fetchrow` run it in
autocommit, as asyncpg `Record`s (`row["name"]`), on a connection of the engine's direct pool
(`tzurot.db.direct_pool`: no greenlet either; `create_engine` gives it a share of the engine's
connections, with the same connect arguments, JSON codecs, pings and recycling), or of the
engine's own pool when it has none.

What it keeps: bind values go through the statement's own bind processors (JSON, UUID, …);
driver errors are raised as SQLAlchemy's exceptions (`IntegrityError`, `OperationalError`, …),
with bound values hidden as `create_engine` hides them, and a connection found dead is dropped
from its pool. What it does not do: result processors (values come as asyncpg decodes them,
as `exec_driver_sql` gives them), Python-side column defaults, expanding `IN` parameters and
engine events; `Statement` refuses statements that would need the last three.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type hints
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import greenlet_spawn

from tzurot.db.direct_pool import Setup, pool_for

Params = Mapping[str, Any] | Sequence[Any]
Row = Any
"""An asyncpg `Record`: `row["name"]`, `row[0]`, `row.get(...)`, unpacking (asyncpg is untyped)."""
_Slot = tuple[str | None, Any, Callable[[Any], Any] | None]
"""A positional parameter: its key in the caller's mapping (None: a value the statement
binds itself), that value, and its bind processor (or None)."""


class Statement:
    """A statement to run with `fetch` / `fetchrow`: a Core statement with named bind
    parameters (values passed as a mapping), or SQL text with `$1…$n` (values as a sequence).

    A Core statement is compiled once per dialect (an engine's), on first use."""

    __slots__ = ("_compiled", "_source")

    def __init__(self, source: ClauseElement | str) -> None:
        self._source = source
        self._compiled: weakref.WeakKeyDictionary[Dialect, tuple[str, tuple[_Slot, ...]]] = (
            weakref.WeakKeyDictionary()
        )

    def compiled_for(self, dialect: Dialect) -> bool:
        """Whether this dialect's SQL is ready (SQL text always is)."""
        return isinstance(self._source, str) or dialect in self._compiled

    def prepare(self, dialect: Dialect, params: Params) -> tuple[str, Sequence[Any]]:
        """The SQL and its positional values."""
        source = self._source
        if isinstance(source, str):
            if isinstance(params, Mapping):
                raise TypeError("Statement of SQL text takes its values as a sequence")
            return source, params
        if not isinstance(params, Mapping):
            raise TypeError("Statement of a Core statement takes its values by name")
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = _compile(source, dialect)
        sql, slots = found
        values = []
        for key, bound, process in slots:
            value = bound if key is None else params[key]
            values.append(value if process is None else process(value))
        return sql, values


def _compile(source: ClauseElement, dialect: Dialect) -> tuple[str, tuple[_Slot, ...]]:
    # No column_keys: only what the statement binds itself is sent (no implicit columns).
    compiled: Any = source.compile(dialect=dialect, column_keys=[])
    if compiled.insert_prefetch or compiled.update_prefetch:
        raise TypeError("Statement: Python-side column defaults need Connection.execute")
    required = {}
    for name, bind in compiled.binds.items():
        if bind.callable is not None:
            raise TypeError("Statement: callable bind values need Connection.execute")
        if bind.required:
            if bind.expanding:
                raise TypeError("Statement: expanding parameters need Connection.execute")
            required[name] = bind.key
    # An IN of values fixed in the statement becomes one parameter per value, as
    # Connection.execute expands it; those values and the other fixed ones are kept.
    expanded = compiled.construct_expanded_state(dict.fromkeys(required.values()))
    processors = {**compiled._bind_processors, **expanded.processors}
    slots = tuple(
        (
            required.get(name),
            None if name in required else expanded.parameters[name],
            processors.get(name),
        )
        for name in expanded.positiontup or ()
    )
    return expanded.statement, slots


async def fetch(engine: AsyncEngine, statement: Statement, params: Params = ()) -> list[Row]:
    """Every row `statement` returns; the statement is its own transaction."""
    rows: list[Row] = await _run(engine, statement, params, "fetch")
    return rows


async def fetchrow(engine: AsyncEngine, statement: Statement, params: Params = ()) -> Row | None:
    """The first row `statement` returns (None when none); its own transaction."""
    return await _run(engine, statement, params, "fetchrow")


async def _run(engine: AsyncEngine, statement: Statement, params: Params, method: str) -> Any:
    dialect = engine.dialect
    sql, args = statement.prepare(dialect, params)
    pool = pool_for(dialect)
    if pool is None:
        return await _run_on_engine(engine, sql, args, method)
    try:
        conn = await pool.acquire()
    except dialect.loaded_dbapi.Error as error:
        raise _connect_failed(dialect, error) from error
    broken = False
    try:
        return await getattr(conn, method)(sql, *args)
    except Exception as error:
        # Not the server's answer to the statement (a connection lost, or one that had read
        # the server's FATAL but not yet its EOF): the connection is not to be used again.
        broken = conn.is_closed() or _ends_connection(error)
        translated = _translated(dialect, sql, error, broken)
        if translated is None:
            raise
        raise translated from error
    finally:
        pool.release(conn, discard=broken)


async def _run_on_engine(engine: AsyncEngine, sql: str, args: Sequence[Any], method: str) -> Any:
    """The statement on a connection of the engine's own pool (an engine with no direct pool)."""
    dialect = engine.dialect
    try:
        proxied = await engine.raw_connection()
    except dialect.loaded_dbapi.Error as error:
        raise _connect_failed(dialect, error) from error
    try:
        driver = proxied.driver_connection
        assert driver is not None
        try:
            return await getattr(driver, method)(sql, *args)
        except Exception as error:
            invalidated = driver.is_closed()
            translated = _translated(engine.dialect, sql, error, invalidated)
            if translated is None:
                raise
            if invalidated:
                proxied.invalidate(translated)  # the pool replaces it
            raise translated from error
    finally:
        await greenlet_spawn(proxied.close)


def _connect_failed(dialect: Dialect, error: Exception) -> sa_exc.StatementError:
    """A failure to connect as `engine.connect()` raises it (SQLAlchemy's `DBAPIError`)."""
    return sa_exc.DBAPIError.instance(
        None, None, error, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect
    )


def _ends_connection(error: Exception) -> bool:
    """Whether the connection is not to be used after `error`: any but the server's error
    for the statement (a FATAL one ends the session) or a value asyncpg could not encode."""
    if isinstance(error, asyncpg.PostgresError):
        return getattr(error, "severity", None) in ("FATAL", "PANIC")
    return not isinstance(error, asyncpg.DataError)


def _translated(
    dialect: Dialect, sql: str, error: Exception, invalidated: bool
) -> sa_exc.StatementError | None:
    """`error` as `Connection.execute` raises it: SQLAlchemy's exception for the driver's
    error (`IntegrityError`, …), bound values hidden; None when `error` is no driver error
    (raised as it is). `invalidated`: the connection died (it is dropped from its pool)."""
    dbapi = dialect.loaded_dbapi
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(dbapi, error)
    except Exception as dbapi_error:
        if not isinstance(dbapi_error, dbapi.Error):
            return None
        return sa_exc.DBAPIError.instance(
            sql,
            None,
            dbapi_error,
            dbapi.Error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=dialect,
        )
    raise AssertionError("the driver error was not raised")  # pragma: no cover


def on_connect(engine: AsyncEngine, setup: Setup) -> None:
    """Runs `setup` on each connection of `engine`'s direct pool before its next use (once
    each); nothing when `engine` has none (its direct statements use the engine's pool, whose
    `connect`/`checkout` events apply)."""
    pool = pool_for(engine.dialect)
    if pool is not None:
        pool.on_connect(setup)
