"""`python -m tzurot.db.upgrade`: migrate every service schema installed in this image.

A service image holds one service, so this upgrades exactly that service's schema (found
through the `tzurot.migrations` entry points) with that service's own database role, read
from `TZUROT_DATABASE_URL` or the file of that name in `TZUROT_SECRETS_DIR`. The migration
Jobs run it before a rollout; `tzurot migrate` does the same for every service at once.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points

from pydantic import SecretStr

from tzurot.db.migrate import upgrade
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError
from tzurot.runtime.main import run_service


@dataclass(frozen=True)
class InstalledMigrations:
    service: str
    schema: str
    script_location: str


def installed_migrations() -> list[InstalledMigrations]:
    """Every service's migrations declared in the `tzurot.migrations` entry point group."""
    found = []
    for ep in entry_points(group="tzurot.migrations"):
        module = importlib.import_module(ep.module)
        found.append(InstalledMigrations(ep.name, module.SCHEMA, module.SCRIPT_LOCATION))
    return sorted(found, key=lambda m: m.service)


class UpgradeSettings(ServiceSettings):
    """Only the database URL matters here; no TLS is needed to migrate."""

    database_url: SecretStr
    tls_dir: None = None  # type: ignore[assignment]  # a migration speaks to Postgres only


async def _main() -> None:
    settings = UpgradeSettings.load()
    migrations = installed_migrations()
    if not migrations:
        raise StartupError("no service migrations are installed in this environment")
    for migration in migrations:
        url = settings.database_url.get_secret_value()
        upgrade(migration.script_location, url, migration.schema)
        print(f"{migration.service}: schema {migration.schema} is at head", file=sys.stderr)


def main() -> None:
    run_service("migrate", _main)


if __name__ == "__main__":
    main()
