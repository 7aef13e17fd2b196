"""`python -m tzurot.db.upgrade`: migrate every service schema installed in this image.

A service image holds one service, so this upgrades exactly that service's schema (found
through the `tzurot.migrations` entry points) with that service's own database role, read
from `TZUROT_DATABASE_URL` or the file of that name in `TZUROT_SECRETS_DIR`. The migration
Jobs run it before a rollout; `tzurot migrate` does the same for every service at once.
"""

from __future__ import annotations

import sys

from pydantic import SecretStr

from tzurot.db.engine import async_url, database_failure
from tzurot.db.heads import InstalledMigrations, installed_migrations
from tzurot.db.migrate import upgrade
from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import StartupError
from tzurot.runtime.main import run_service

__all__ = ["InstalledMigrations", "installed_migrations", "main"]


class UpgradeSettings(ServiceSettings):
    """Only the database URL matters here; no TLS is needed to migrate."""

    database_url: SecretStr
    tls_dir: None = None  # type: ignore[assignment]  # a migration speaks to Postgres only


async def _main() -> None:
    settings = UpgradeSettings.load()
    migrations = installed_migrations()
    if not migrations:
        raise StartupError("no service migrations are installed in this environment")
    url = settings.database_url.get_secret_value()
    async_url(url)  # a malformed URL: one line quoting none of it (DatabaseUrlError)
    for migration in migrations:
        try:
            upgrade(migration.script_location, url, migration.schema)
        except Exception as exc:
            failure = database_failure(exc, url, f"the migration of schema {migration.schema}")
            if failure is None:
                raise
            raise failure from None
        print(f"{migration.service}: schema {migration.schema} is at head", file=sys.stderr)


def main() -> None:
    run_service("migrate", _main)


if __name__ == "__main__":
    main()
