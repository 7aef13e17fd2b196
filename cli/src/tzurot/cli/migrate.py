"""`tzurot migrate`: Alembic migrations of every installed service, each in its own schema.

A service declares its migrations under the entry point group `tzurot.migrations`
(tzurot.db.heads.installed_migrations finds them); the module holds `SCRIPT_LOCATION` and
`SCHEMA`. Schemas already at head are found with one query each (tzurot.db.heads) and
Alembic, SQLAlchemy and the services' tables are imported only when one is behind: `tzurot
up` migrates on every start.

A database the user names (`--database-url`) is checked first (`migrate_database`): its URL,
then one connection, so a mistake is one line by kind (tzurot.db.errors) that never shows the
password, before Alembic loads.
"""

from __future__ import annotations

import threading

from tzurot.db.blocking import run_blocking
from tzurot.db.heads import InstalledMigrations, behind_head, installed_migrations

CONNECT_TIMEOUT_SECONDS = 10.0


def migrate_all(
    database_url: str,
    services: set[str] | None = None,
    *,
    stopping: threading.Event | None = None,
) -> list[InstalledMigrations]:
    """Upgrades every (or the named) service's schema to head; returns them (all at head).

    `stopping`: set by a caller that runs this in a worker thread and gives up (`tzurot up`
    on Ctrl-C); a pause between lock retries then ends at once (tzurot.db.migrate)."""
    wanted = [m for m in installed_migrations() if services is None or m.service in services]
    behind = run_blocking(lambda: behind_head(database_url, wanted))
    if behind:
        from tzurot.db.migrate import upgrade  # noqa: PLC0415 - Alembic only when needed

        for migration in behind:
            upgrade(migration.script_location, database_url, migration.schema, stopping=stopping)
    return wanted


def migrate_database(database_url: str) -> list[InstalledMigrations]:
    """`migrate_all` on a database the user named. A malformed URL raises DatabaseUrlError, a
    server that does not answer DatabaseUnreachable, one that refuses (credentials, no such
    database, a privilege the migrations need) DatabaseRefused."""
    from tzurot.db.engine import connect_once, database_failure  # noqa: PLC0415 - SQLAlchemy

    run_blocking(lambda: connect_once(database_url, connect_timeout=CONNECT_TIMEOUT_SECONDS))
    try:
        return migrate_all(database_url)
    except Exception as exc:
        failure = database_failure(exc, database_url, "the migrations")
        if failure is None:
            raise
        raise failure from None
