"""Alembic, driven from code, with each service's version table inside its own schema.

A service keeps `migrations/` (versions/ plus a three-line env.py) next to its tables:

    from tzurot.db.migrate import run_async_migrations
    from tzurot.memory.tables import SCHEMA, metadata
    run_async_migrations(metadata, SCHEMA)

`upgrade`, `downgrade` and `current` build the Alembic Config in code (no alembic.ini)
and hand the URL to env.py through `Config.attributes`, never through a global. They are
synchronous; called inside a running event loop they do their work in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from tzurot.db.engine import async_url

URL_ATTRIBUTE = "tzurot.database_url"
SCHEMA_ATTRIBUTE = "tzurot.schema"

Metadata = MetaData | Sequence[MetaData] | None


def migration_engine(url: str) -> AsyncEngine:
    """A pool-less engine for one migration run."""
    return create_async_engine(async_url(url), poolclass=NullPool, hide_parameters=True)


def alembic_config(script_location: str, url: str, schema: str) -> Config:
    """An in-memory Alembic Config for one service's scripts, database and schema."""
    config = Config()
    # Config values go through ConfigParser interpolation, so a literal % must be doubled.
    config.set_main_option("script_location", script_location.replace("%", "%%"))
    config.attributes[URL_ATTRIBUTE] = url
    config.attributes[SCHEMA_ATTRIBUTE] = schema
    return config


def upgrade(script_location: str, url: str, schema: str, revision: str = "head") -> None:
    """Creates `schema` if missing, then upgrades it to `revision`; a no-op when there."""
    ensure_schema(url, schema)
    command.upgrade(alembic_config(script_location, url, schema), revision)


def downgrade(script_location: str, url: str, schema: str, revision: str) -> None:
    """Downgrades `schema` to `revision` (`"-1"`, `"base"`, or a revision id)."""
    command.downgrade(alembic_config(script_location, url, schema), revision)


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
    """Creates `schema` unless it exists (checked first: a role may own it yet lack CREATE)."""
    run_blocking(lambda: _ensure_schema(url, schema))


async def _ensure_schema(url: str, schema: str) -> None:
    engine = migration_engine(url)
    try:
        async with engine.begin() as connection:
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
    run_blocking(lambda: _run_online(url, schema, options))


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


async def _run_online(url: str, schema: str, options: dict[str, Any]) -> None:
    engine = migration_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_do_run_migrations, schema, options)
    finally:
        await engine.dispose()


def _do_run_migrations(connection: Connection, schema: str, options: dict[str, Any]) -> None:
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        connection.execute(
            text("select pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"tzurot.migrate.{schema}"},
        )
        context.run_migrations()
