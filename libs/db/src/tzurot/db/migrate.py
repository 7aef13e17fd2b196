"""Alembic, driven from code, with each service's version table inside its own schema.

A service keeps `migrations/` (versions/ plus a three-line env.py) next to its tables:

    from tzurot.db.migrate import run_async_migrations
    from tzurot.memory.tables import SCHEMA, metadata
    run_async_migrations(metadata, SCHEMA)

`upgrade`, `downgrade` and `current` build the Alembic Config in code (no alembic.ini)
and hand the URL to env.py through `Config.attributes`, never through a global. They are
synchronous; called inside a running event loop they do their work in a worker thread.

A run takes the schema's advisory lock, then sets a short `lock_timeout` for the rest of its
transaction: a DDL statement queued behind a live replica's long transaction for an ACCESS
EXCLUSIVE lock would queue every later query on that table behind itself, stalling the
service. Timed out (SQLSTATE 55P03), the whole run rolls back and `upgrade`/`downgrade` try
it again after a pause (`LOCK_RETRY_PAUSES`), then raise MigrationLockTimeout. A caller that
runs them in a worker thread can cut the pauses short (`stopping`: `tzurot up` on Ctrl-C).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from alembic import command, context
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tzurot.db.blocking import run_blocking
from tzurot.db.engine import async_url, describe_target
from tzurot.runtime.errors import StartupError

URL_ATTRIBUTE = "tzurot.database_url"
SCHEMA_ATTRIBUTE = "tzurot.schema"
LOCK_TIMEOUT_ATTRIBUTE = "tzurot.lock_timeout"
DEFAULT_LOCK_TIMEOUT_SECONDS = 5.0
"""How long a migration's statement waits for a lock (the advisory lock aside): as long as
the queries behind it on that table wait too."""
LOCK_RETRY_PAUSES: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
"""The pauses before each new attempt of a run that timed out on a lock (5 attempts)."""
LOCK_NOT_AVAILABLE = "55P03"
"""Postgres' SQLSTATE for lock_timeout (and NOWAIT) failures: lock_not_available."""

Metadata = MetaData | Sequence[MetaData] | None


class MigrationLockTimeout(StartupError):
    """Every attempt of a migration run timed out waiting for a lock; each was rolled back."""


def migration_engine(url: str) -> AsyncEngine:
    """A pool-less engine for one migration run."""
    return create_async_engine(async_url(url), poolclass=NullPool, hide_parameters=True)


def alembic_config(
    script_location: str,
    url: str,
    schema: str,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
) -> Config:
    """An in-memory Alembic Config for one service's scripts, database and schema."""
    config = Config()
    # Config values go through ConfigParser interpolation, so a literal % must be doubled.
    config.set_main_option("script_location", script_location.replace("%", "%%"))
    config.attributes[URL_ATTRIBUTE] = url
    config.attributes[SCHEMA_ATTRIBUTE] = schema
    config.attributes[LOCK_TIMEOUT_ATTRIBUTE] = _checked_lock_timeout(lock_timeout)
    return config


def upgrade(
    script_location: str,
    url: str,
    schema: str,
    revision: str = "head",
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    lock_retry_pauses: Sequence[float] = LOCK_RETRY_PAUSES,
    stopping: threading.Event | None = None,
) -> None:
    """Creates `schema` if missing, then upgrades it to `revision`; a no-op when there.

    A statement waits at most `lock_timeout` seconds for a lock; then the run, rolled back
    whole, is tried again after each of `lock_retry_pauses`, and MigrationLockTimeout is
    raised when the last attempt timed out too. Any other failure is raised at once.
    `stopping`, once set, ends a pause at once with MigrationLockTimeout (no further attempt)."""
    config = alembic_config(script_location, url, schema, lock_timeout=lock_timeout)
    ensure_schema(url, schema)
    _retrying_on_lock_timeout(
        lambda: command.upgrade(config, revision),
        url,
        schema,
        lock_timeout,
        lock_retry_pauses,
        stopping=stopping,
    )


def downgrade(
    script_location: str,
    url: str,
    schema: str,
    revision: str,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    lock_retry_pauses: Sequence[float] = LOCK_RETRY_PAUSES,
) -> None:
    """Downgrades `schema` to `revision` (`"-1"`, `"base"`, or a revision id); lock
    timeouts are retried as by `upgrade`."""
    config = alembic_config(script_location, url, schema, lock_timeout=lock_timeout)
    _retrying_on_lock_timeout(
        lambda: command.downgrade(config, revision), url, schema, lock_timeout, lock_retry_pauses
    )


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether `exc` is Postgres' lock_not_available (SQLSTATE 55P03), as raised by
    SQLAlchemy (a DBAPIError whose `orig`, the asyncpg adapter's error, has the `sqlstate`)
    or by the driver itself; the chain of `orig` and `__cause__` is followed."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


def _retrying_on_lock_timeout(
    run: Callable[[], None],
    url: str,
    schema: str,
    lock_timeout: float,
    pauses: Sequence[float],
    *,
    stopping: threading.Event | None = None,
) -> None:
    """`run()`, again after each of `pauses` while it fails on a lock timeout (and
    `stopping` is not set)."""
    attempts = len(pauses) + 1
    stop = stopping or threading.Event()  # none given: never set, each pause is slept in full
    for attempt in range(1, attempts + 1):
        try:
            run()
            return
        except Exception as exc:
            if not is_lock_timeout(exc):
                raise
        if attempt == attempts:
            break
        pause = pauses[attempt - 1]
        # Fetched here, not cached at import: the CLI's logging may be configured later.
        structlog.get_logger("tzurot.migrate").warning(
            "migrate.lock_timeout",
            schema=schema,
            attempt=attempt,
            attempts=attempts,
            lock_timeout_seconds=lock_timeout,
            retry_in_seconds=pause,
        )
        if stop.wait(pause):
            break  # the caller gave up: no further attempt
    # `from None`: the driver's error would make callers report a refusal (database_failure).
    raise MigrationLockTimeout(
        f"the migration of schema {schema} at {describe_target(url)} could not get a lock "
        f"within {lock_timeout:g} s in {attempt} attempt(s): a long-running transaction holds "
        "one of its tables (see pg_stat_activity); every attempt was rolled back, so the "
        "schema is unchanged"
    ) from None


def _checked_lock_timeout(seconds: float) -> float:
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"the migration lock timeout must be > 0 seconds, not {seconds!r}")
    return seconds


def current(script_location: str, url: str, schema: str) -> str | None:
    """The revision `schema` is at, None if never migrated (several heads: comma-joined)."""
    config = alembic_config(script_location, url, schema)
    script = ScriptDirectory.from_config(config)
    heads: list[str] = []

    def record(rev: Any, _context: MigrationContext) -> list[Any]:
        heads.extend(rev)
        return []

    with EnvironmentContext(config, script, fn=record, dont_mutate=True):
        script.run_env()
    return ",".join(sorted(heads)) or None


def ensure_schema(url: str, schema: str) -> None:
    """Creates `schema` unless it exists (checked first: a role may own it yet lack CREATE).

    Under the schema's migration lock (`_advisory_lock`): two first runs at once would both
    find no schema, and the second `create schema` would fail on the first's."""
    run_blocking(lambda: _ensure_schema(url, schema))


def migration_lock_key(schema: str) -> str:
    """The key of `schema`'s migration lock (`pg_advisory_xact_lock(hashtext(key))`): a
    migration that commits as it goes (autocommit_block) holds it for its session meanwhile."""
    return f"tzurot.migrate.{schema}"


def _advisory_lock(schema: str) -> tuple[Any, dict[str, str]]:
    """The statement that takes `schema`'s migration lock until the transaction ends."""
    return text("select pg_advisory_xact_lock(hashtext(:key))"), {"key": migration_lock_key(schema)}


async def _ensure_schema(url: str, schema: str) -> None:
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(*_advisory_lock(schema))
            exists = await connection.scalar(
                text("select 1 from pg_namespace where nspname = :schema"), {"schema": schema}
            )
            if exists is None:
                quoted = engine.dialect.identifier_preparer.quote_schema(schema)
                await connection.execute(text(f"create schema {quoted}"))
    finally:
        await engine.dispose()


def run_async_migrations(target_metadata: Metadata, schema: str) -> None:
    """The body of every service's env.py: migrate `schema` and nothing else.

    Online, it connects with asyncpg, serialises concurrent runs on the same schema with
    an advisory lock, and keeps `alembic_version` inside `schema`; offline (`--sql`) it
    only renders SQL. Autogenerate sees only tables of `schema`.
    """
    config = context.config
    configured = config.attributes.get(SCHEMA_ATTRIBUTE)
    if configured not in (None, schema):
        raise ValueError(f"env.py migrates schema {schema!r} but was asked for {configured!r}")
    options = _context_options(target_metadata, schema)
    if context.is_offline_mode():
        context.configure(dialect_name="postgresql", literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.attributes.get(URL_ATTRIBUTE) or config.get_main_option("sqlalchemy.url")
    if not url:
        raise ValueError("no database URL: use tzurot.db.migrate, or set sqlalchemy.url")
    lock_timeout = _checked_lock_timeout(
        config.attributes.get(LOCK_TIMEOUT_ATTRIBUTE, DEFAULT_LOCK_TIMEOUT_SECONDS)
    )
    run_blocking(lambda: _run_online(url, schema, options, lock_timeout))


def _context_options(target_metadata: Metadata, schema: str) -> dict[str, Any]:
    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return name == schema if type_ == "schema" else True

    def include_object(obj: Any, _name: str | None, type_: str, _r: bool, _c: Any) -> bool:
        return obj.schema == schema if type_ == "table" else True

    return {
        "target_metadata": target_metadata,
        "version_table_schema": schema,
        "include_schemas": True,
        "include_name": include_name,
        "include_object": include_object,
    }


async def _run_online(url: str, schema: str, options: dict[str, Any], lock_timeout: float) -> None:
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_do_run_migrations, schema, options, lock_timeout)
    finally:
        await engine.dispose()


def _do_run_migrations(
    connection: Connection, schema: str, options: dict[str, Any], lock_timeout: float
) -> None:
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        connection.execute(*_advisory_lock(schema))
        # After the advisory lock, which a concurrent run holds as long as its migrations take;
        # set_config(..., true) is SET LOCAL: it ends with this transaction.
        connection.execute(
            text("select set_config('lock_timeout', :timeout, true)"),
            {"timeout": f"{max(1, round(lock_timeout * 1000))}ms"},
        )
        context.run_migrations()
