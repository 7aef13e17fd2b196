"""Async SQLAlchemy engines over asyncpg, and the startup check every service runs.

URLs arrive in libpq form (`postgresql://user:pw@host/db`, or a unix socket as
`postgresql://user@/db?host=/socket/dir`, which is what the embedded server hands out);
`async_url` turns them into what SQLAlchemy's asyncpg dialect accepts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import in_greenlet

from tzurot.db.direct_pool import DirectPool, attach, connector, pool_for
from tzurot.db.errors import URL_FORM, DatabaseRefused, DatabaseUnreachable, DatabaseUrlError
from tzurot.db.heads import migration_problem
from tzurot.runtime.errors import StartupError

ASYNC_DRIVER = "postgresql+asyncpg"
_SCHEMES = ("postgresql", "postgres")
# libpq's sslmode has no asyncpg keyword of that name; asyncpg's `ssl` takes the same values.
_LIBPQ_TO_ASYNCPG = {"sslmode": "ssl"}
DISPOSE_WAIT_SECONDS = 2.0
"""How long `dispose` waits for the connections in use to come back."""
IDLE_PING_SECONDS = 5.0
"""A pooled connection unused for this long is pinged before it is handed out."""
RECYCLE_SECONDS = 1800
"""A pooled connection this old is closed and replaced before it is handed out."""
POOL_TIMEOUT_SECONDS = 30
"""How long a use waits for a pooled connection when all are in use."""
_LAST_USED = "tzurot_last_used"
MAX_PORT = 65535


def _parse(url: str) -> URL:
    """`url` parsed; DatabaseUrlError when it is malformed, quoting none of it but its scheme
    (SQLAlchemy's own errors quote the part they choke on: a password without its `@` is read
    as the port)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            f"the database URL cannot be parsed; write it as {URL_FORM}"
        ) from None
    except ValueError:
        raise DatabaseUrlError(
            "the database URL's port is not a number (is the @ before the host missing?); "
            f"write it as {URL_FORM}"
        ) from None
    backend = parsed.drivername.split("+", 1)[0]
    if backend not in _SCHEMES:
        raise DatabaseUrlError(f"not a Postgres URL (scheme {parsed.drivername!r})")
    if parsed.port is not None and not 1 <= parsed.port <= MAX_PORT:
        raise DatabaseUrlError(f"the database URL's port is not between 1 and {MAX_PORT}")
    # An @ belongs only at the end of user:password. Another one puts part of them in the host,
    # or (no user part parsed) all of them in the database name: both are shown in messages.
    credentials = parsed.username is not None or parsed.password is not None
    if "@" in (parsed.host or "") or (not credentials and "@" in url.split("?", 1)[0]):
        raise DatabaseUrlError(
            "the database URL has an @ out of place: write an @ inside the user name or "
            "password as %40"
        )
    return parsed


def async_url(url: str) -> str:
    """Returns `url` for SQLAlchemy's asyncpg dialect (`postgresql+asyncpg://…`).

    Accepts `postgresql://`, `postgres://` and any `postgresql+<driver>://`; keeps the
    `?host=/socket/dir` form (asyncpg reads it as a unix socket directory) and maps
    libpq's `sslmode` to asyncpg's `ssl`.
    """
    parsed = _parse(url)
    query = {_LIBPQ_TO_ASYNCPG.get(key, key): value for key, value in parsed.query.items()}
    return parsed.set(drivername=ASYNC_DRIVER, query=query).render_as_string(hide_password=False)


def describe_target(url: str | URL) -> str:
    """Names where a URL points without its credentials: `host[:port] db=name`."""
    parsed = make_url(url)
    host = parsed.host or parsed.query.get("host") or "localhost"
    if not isinstance(host, str):  # repeated ?host= (multi-host): name them all
        host = ",".join(host)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{host}{port} db={parsed.database or parsed.username or 'postgres'}"


def create_engine(
    url: str,
    *,
    pool_size: int = 15,
    direct_pool_size: int | None = None,
    connect_timeout: float = 10.0,
    server_settings: Mapping[str, str] | None = None,
    ping_after_idle: float = IDLE_PING_SECONDS,
) -> AsyncEngine:
    """Builds a pooled asyncpg engine: at most `pool_size` connections in all.

    `direct_pool_size` of them (by default a third, rounded down, at most 4: 4 of 15) form the
    pool of `tzurot.db.direct`'s statements (`tzurot.db.direct_pool`), the rest the engine's
    own; with 0 (the default below a `pool_size` of 3) direct statements share the engine's
    pool. A direct statement holds its connection one round trip; the engine's are held for
    transactions and locks (the two pools lend nothing to each other).

    Each pool opens connections as they are needed, up to its size, and keeps every one it
    opened: a use beyond that waits (up to 30 s) for a connection to come back. (SQLAlchemy's
    overflow connections are closed when returned; under load every burst then opened
    and closed connections, and a new connection costs a Postgres backend, asyncpg's
    set-up and every statement planned again: issue 16 measured ~11 ms of CPU a turn at
    10/s with 10 + 5 overflow, nothing with 15 kept.)

    Connections idle for `ping_after_idle` seconds are pinged before use (a restarted
    database costs one retry, not an error), all are recycled after 30 minutes, and
    connecting gives up after `connect_timeout`. `server_settings` become session
    parameters, e.g. `{"application_name": "memory"}`. The direct pool is closed with the
    engine (`dispose`, or the engine's own `dispose()`).
    """
    direct_size = min(4, pool_size // 3) if direct_pool_size is None else direct_pool_size
    if not 0 <= direct_size < pool_size:
        raise ValueError("direct_pool_size must leave the engine at least one connection")
    connect_args: dict[str, object] = {"timeout": connect_timeout}
    if server_settings:
        connect_args["server_settings"] = dict(server_settings)
    engine = _create_async_engine(
        async_url(url),
        pool_size=pool_size - direct_size,
        max_overflow=0,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_recycle=RECYCLE_SECONDS,
        pool_use_lifo=True,
        connect_args=connect_args,
        # Never put bound values (users' messages, names) in an error: errors reach logs.
        hide_parameters=True,
    )
    _ping_idle_connections(engine, ping_after_idle)
    if direct_size:
        _attach_direct_pool(engine, direct_size, connect_args, ping_after_idle)
    return engine


def _attach_direct_pool(
    engine: AsyncEngine, size: int, connect_args: Mapping[str, object], ping_after_idle: float
) -> None:
    """Gives `engine` a direct pool of `size` connections, closed when it is disposed."""
    arguments = {key: value for key, value in connect_args.items() if key != "timeout"}
    timeout = float(connect_args["timeout"])  # type: ignore[arg-type]  # a float, set above
    pool = DirectPool(
        connector(engine.dialect, engine.url, arguments, timeout=timeout),
        size=size,
        ping_after_idle=ping_after_idle,
        recycle=RECYCLE_SECONDS,
        timeout=POOL_TIMEOUT_SECONDS,
    )
    attach(engine, pool)

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _disposed(_engine: Any) -> None:
        # AsyncEngine.dispose runs this in SQLAlchemy's greenlet; elsewhere (a sync dispose,
        # no loop to await on) the connections are closed at once.
        if in_greenlet():
            await_only(pool.dispose())
        else:
            pool.terminate()


def _ping_idle_connections(engine: AsyncEngine, after: float) -> None:
    """Pre-ping, but only for connections that sat idle in the pool for `after` seconds.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, and over asyncpg a ping is three
    round trips (BEGIN, SELECT 1, ROLLBACK): most of a short query's cost. A connection
    used moments ago is as alive as a ping would show; one that broke mid-use is discarded
    by the pool on the error. A failed ping raises DisconnectionError, which makes the
    pool replace the connection and check out again (SQLAlchemy's documented recipe).
    """
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_LAST_USED] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked_out(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        last = record.info.get(_LAST_USED)
        if last is None or time.monotonic() - last < after:
            return  # fresh from connect, or used moments ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("pooled connection failed its ping") from exc
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, with connections in autocommit: for reads of a single statement.

    Over asyncpg, `engine.connect()` wraps even one SELECT in BEGIN … ROLLBACK: three round
    trips for one query. In autocommit each statement is its own transaction (one snapshot),
    so a lone read costs one round trip. Never use it for writes that must go together.
    """
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def dispose(engine: AsyncEngine, *, within: float = DISPOSE_WAIT_SECONDS) -> None:
    """Closes the engine's pool once the connections in use are back (at most `within` s).

    A connection still checked out when its pool is disposed is left to the garbage
    collector, which cannot close an asyncpg connection: its backend lingers and asyncpg
    warns (ResourceWarning). At a service's stop, the calls its server cancelled after the
    grace are still giving theirs back. The direct pool's are waited for too; those still
    out after `within` are closed at once."""
    pool: Any = engine.sync_engine.pool
    checked_out = getattr(pool, "checkedout", None)  # a QueuePool's count; NullPool has none
    direct = pool_for(engine.dialect)
    for _ in range(max(1, round(within / 0.01))):
        in_use = (checked_out() if checked_out else 0) + (direct.in_use if direct else 0)
        if not in_use:
            break
        await asyncio.sleep(0.01)
    await engine.dispose()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no lazy reload in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_database(
    engine: AsyncEngine, schema: str, *, script_location: str | None = None
) -> None:
    """Fails fast, in one line, unless the database answers and holds `schema`.

    Raises StartupError naming host and database (never the password): DatabaseUnreachable
    when no server answers, DatabaseRefused when it refuses us (a wrong password, no such
    database), and a plain StartupError when the schema is missing (not migrated). With
    `script_location` (the service's migrations), also when the schema is behind their head
    (`heads.migration_problem`): a service started before its migration ran would fail
    every request that meets a new column instead.
    """
    where = describe_target(engine.url)
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("select 1 from pg_namespace where nspname = :schema"), {"schema": schema}
            )
            at = await _schema_revisions(connection, schema) if found else frozenset()
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        # Unreachable, or refused (a wrong password, no such database): each said as it is.
        failure = database_failure(exc, engine.url.render_as_string(hide_password=False))
        if failure is not None:
            raise failure from exc
        reason = _reason(exc, engine.url.password)
        raise StartupError(f"cannot use the database at {where}: {reason}") from exc
    if found is None:
        raise StartupError(
            f"the database at {where} has no schema {schema!r}: run `tzurot migrate` first"
        )
    problem = None if script_location is None else migration_problem(schema, at, script_location)
    if problem is not None:
        raise StartupError(f"the database at {where}: {problem}")


async def _schema_revisions(connection: AsyncConnection, schema: str) -> frozenset[str]:
    """The revisions in `schema.alembic_version` (none without the table)."""
    table = await connection.scalar(
        text("select to_regclass(format('%I.alembic_version', cast(:schema as text)))::text"),
        {"schema": schema},
    )
    if table is None:
        return frozenset()
    rows = await connection.scalars(text(f"select version_num from {table}"))  # noqa: S608 - to_regclass's own quoting
    return frozenset(rows)


def database_failure(
    exc: BaseException, url: str, doing: str = "the connection"
) -> StartupError | None:
    """`exc`, raised while using the database at `url`, as one line by kind (errors.py), naming
    where (`host:port db=name`) and why, never the password; None when `exc` is no database
    failure (a bug: the caller raises it as it is).

    `doing`: what the server refused, for DatabaseRefused ("the connection")."""
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 - loaded on failure only

    parsed = _parse(url)
    where = describe_target(parsed)
    root = _root_cause(exc)
    reason = _reason(exc, parsed.password)
    if isinstance(root, OSError | TimeoutError):
        return DatabaseUnreachable(f"cannot reach the database at {where}: {reason}")
    if isinstance(root, asyncpg.PostgresError):
        return DatabaseRefused(f"the database at {where} refused {doing}: {reason}")
    if isinstance(root, asyncpg.ClientConfigurationError):  # e.g. ?sslmode=sometimes
        return DatabaseUrlError(f"the database URL is not valid: {reason}")
    return None


async def connect_once(url: str, *, connect_timeout: float = 10.0) -> None:
    """Opens and closes one connection to `url`, as SQLAlchemy reads it (the migrations do too);
    a failure is `database_failure`'s error (DatabaseUrlError, DatabaseUnreachable or
    DatabaseRefused)."""
    engine = _create_async_engine(
        async_url(url),
        poolclass=NullPool,
        connect_args={"timeout": connect_timeout},
        hide_parameters=True,
    )
    try:
        async with engine.connect():
            pass
    except Exception as exc:
        failure = database_failure(exc, url)
        if failure is None:
            raise
        raise failure from None
    finally:
        await engine.dispose()


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "orig", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _reason(exc: BaseException, password: str | None) -> str:
    """A one-line reason for a connection failure, scrubbed of the password."""
    root = _root_cause(exc)
    if isinstance(root, TimeoutError):
        return "timed out"
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    if isinstance(root, FileNotFoundError):
        return "no server socket there (is Postgres running?)"
    if isinstance(root, OSError) and root.strerror:
        reason = root.strerror.lower()
    else:
        lines = str(root).strip().splitlines()
        reason = lines[0] if lines else type(root).__name__
    if password:
        reason = reason.replace(password, "***")
    return reason
