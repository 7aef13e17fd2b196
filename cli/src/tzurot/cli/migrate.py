"""`tzurot migrate`: Alembic migrations of every installed service, each in its own schema.

A service declares its migrations under the entry point group `tzurot.migrations`
(tzurot.db.upgrade.installed_migrations finds them); the module holds `SCRIPT_LOCATION` and
`SCHEMA`.
"""

from __future__ import annotations

from tzurot.db.migrate import upgrade
from tzurot.db.upgrade import InstalledMigrations, installed_migrations


def migrate_all(database_url: str, services: set[str] | None = None) -> list[InstalledMigrations]:
    """Upgrades every (or the named) service's schema to head; returns what ran."""
    ran = []
    for migration in installed_migrations():
        if services is None or migration.service in services:
            upgrade(migration.script_location, database_url, migration.schema)
            ran.append(migration)
    return ran
