"""`tzurot migrate`: Alembic migrations of every installed service, each in its own schema.

A service declares its migrations under the entry point group `tzurot.migrations`; the
module holds `SCRIPT_LOCATION` and `SCHEMA`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points

from tzurot.db.migrate import upgrade


@dataclass(frozen=True)
class MigrationSet:
    service: str
    schema: str
    script_location: str


def discover() -> list[MigrationSet]:
    found = []
    for ep in entry_points(group="tzurot.migrations"):
        module = importlib.import_module(ep.module)
        found.append(MigrationSet(ep.name, module.SCHEMA, module.SCRIPT_LOCATION))
    return sorted(found, key=lambda m: m.service)


def migrate_all(database_url: str, services: set[str] | None = None) -> list[MigrationSet]:
    """Upgrades every (or the named) service's schema to head; returns what ran."""
    ran = []
    for migration in discover():
        if services is None or migration.service in services:
            upgrade(migration.script_location, database_url, migration.schema)
            ran.append(migration)
    return ran
