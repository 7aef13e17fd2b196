"""`tzurot migrate`: Alembic migrations of every installed service, each in its own schema.

A service declares its migrations under the entry point group `tzurot.migrations`
(tzurot.db.heads.installed_migrations finds them); the module holds `SCRIPT_LOCATION` and
`SCHEMA`. Schemas already at head are found with one query each (tzurot.db.heads) and
Alembic, SQLAlchemy and the services' tables are imported only when one is behind: `tzurot
up` migrates on every start.

A database the user names (`--database-url`) is checked first (`migrate_database`): its URL,
then one connection, so a mistake is one line by kind (tzurot.db.errors) that never shows the
password, before Alembic loads.

`migrate_schemas` also says what it applied to each schema (read from `alembic_version`
before and after, only for a schema that was behind), so `tzurot migrate` tells a run that
migrated from one that had nothing to do (`migration_report`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tzurot.db.blocking import run_blocking
from tzurot.db.heads import InstalledMigrations, behind_head, installed_migrations, libpq_url

CONNECT_TIMEOUT_SECONDS = 10.0
LISTED_SCRIPTS = 4
"""A report names at most this many scripts a schema was given (more: the first … the last)."""


@dataclass(frozen=True)
class SchemaMigrated:
    """One service's schema, now at head, and what this run applied to it."""

    migrations: InstalledMigrations
    applied: tuple[str, ...] | None
    """The scripts applied, oldest first, by file name (`0027_usage_estimated`); empty when
    the schema was at head already, None when not known (its revision could not be read
    before the upgrade)."""


def migrate_all(
    database_url: str,
    services: set[str] | None = None,
    *,
    stopping: threading.Event | None = None,
) -> list[InstalledMigrations]:
    """Upgrades every (or the named) service's schema to head; returns them (all at head).

    `stopping`: set by a caller that runs this in a worker thread and gives up (`tzurot up`
    on Ctrl-C); a pause between lock retries then ends at once (tzurot.db.migrate)."""
    done = migrate_schemas(database_url, services, stopping=stopping)
    return [schema.migrations for schema in done]


def migrate_schemas(
    database_url: str,
    services: set[str] | None = None,
    *,
    stopping: threading.Event | None = None,
) -> list[SchemaMigrated]:
    """`migrate_all`, saying what was applied to each schema."""
    wanted = [m for m in installed_migrations() if services is None or m.service in services]
    behind = run_blocking(lambda: behind_head(database_url, wanted))
    if not behind:
        return [SchemaMigrated(migration, ()) for migration in wanted]
    from tzurot.db.migrate import upgrade  # noqa: PLC0415 - Alembic only when needed

    schemas = [migration.schema for migration in behind]
    before = run_blocking(lambda: _schema_revisions(database_url, schemas))
    for migration in behind:
        upgrade(migration.script_location, database_url, migration.schema, stopping=stopping)
    after = run_blocking(lambda: _schema_revisions(database_url, schemas))
    return [
        SchemaMigrated(
            migration,
            _applied(migration.script_location, before, after, migration.schema)
            if migration in behind
            else (),
        )
        for migration in wanted
    ]


def migration_report(done: Sequence[SchemaMigrated]) -> list[str]:
    """What `tzurot migrate` prints: a line per schema (at head, and what it was given),
    then whether anything was applied at all."""
    lines = []
    count = 0
    for schema in done:
        line = f"{schema.migrations.service}: schema {schema.migrations.schema} is at head"
        if schema.applied is None:
            line += ": migrated"
        elif schema.applied:
            count += len(schema.applied)
            line += f": applied {_migrations(len(schema.applied))} ({_listed(schema.applied)})"
        lines.append(line)
    if count:
        lines.append(f"Applied {_migrations(count)}.")
    elif any(schema.applied is None for schema in done):
        lines.append("Migrated.")
    else:
        lines.append("The database is up to date: no migration to apply.")
    return lines


def _migrations(count: int) -> str:
    return f"{count} migration{'' if count == 1 else 's'}"


def _listed(scripts: Sequence[str]) -> str:
    if len(scripts) <= LISTED_SCRIPTS:
        return ", ".join(scripts)
    return f"{scripts[0]} … {scripts[-1]}"


async def _schema_revisions(url: str, schemas: Sequence[str]) -> dict[str, frozenset[str]] | None:
    """schema -> the revisions in its `alembic_version` (empty: none yet); None when the
    database cannot be asked (the upgrade then says why, or the report says less)."""
    import asyncpg  # type: ignore[import-untyped]  # noqa: PLC0415 - only when behind

    try:
        connection = await asyncpg.connect(libpq_url(url), timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, asyncpg.PostgresError, ValueError, TimeoutError):
        return None
    try:
        found = {}
        for schema in schemas:
            table = await connection.fetchval(
                "select to_regclass(format('%I.alembic_version', $1::text))::text", schema
            )
            rows = []
            if table is not None:
                quoted = '"' + schema.replace('"', '""') + '"'
                rows = await connection.fetch(f"select version_num from {quoted}.alembic_version")  # noqa: S608 - a quoted identifier, not a value
            found[schema] = frozenset(row["version_num"] for row in rows)
        return found
    except (OSError, asyncpg.PostgresError):
        return None
    finally:
        await connection.close()


def _applied(
    script_location: str,
    before: dict[str, frozenset[str]] | None,
    after: dict[str, frozenset[str]] | None,
    schema: str,
) -> tuple[str, ...] | None:
    """The scripts between the schema's revisions before and after, oldest first."""
    if before is None or after is None:
        return None
    if before[schema] == after[schema]:
        return ()
    from alembic.script import ScriptDirectory  # noqa: PLC0415 - loaded by the upgrade already
    from alembic.script.revision import RevisionError  # noqa: PLC0415 - as above

    try:
        scripts = list(
            ScriptDirectory(script_location).iterate_revisions(
                tuple(after[schema]), tuple(before[schema]) or "base"
            )
        )
    except RevisionError:  # a revision these scripts do not know (a newer release's)
        return None
    return tuple(Path(script.path).stem for script in reversed(scripts))


def migrate_database(database_url: str) -> list[SchemaMigrated]:
    """`migrate_all` on a database the user named. A malformed URL raises DatabaseUrlError, a
    server that does not answer DatabaseUnreachable, one that refuses (credentials, no such
    database, a privilege the migrations need) DatabaseRefused."""
    from tzurot.db.engine import connect_once, database_failure  # noqa: PLC0415 - SQLAlchemy

    run_blocking(lambda: connect_once(database_url, connect_timeout=CONNECT_TIMEOUT_SECONDS))
    try:
        return migrate_schemas(database_url)
    except Exception as exc:
        failure = database_failure(exc, database_url, "the migrations")
        if failure is None:
            raise
        raise failure from None
