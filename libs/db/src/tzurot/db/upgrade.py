"""`python -m tzurot.db.upgrade`: migrate every service schema installed in this image.

A service image holds one service, so this upgrades exactly that service's schema (found
through the `tzurot.migrations` entry points) with that service's own database role, read
from `TZUROT_DATABASE_URL` or the file of that name in `TZUROT_SECRETS_DIR`. The migration
Jobs run it before a rollout; `tzurot migrate` does the same for every service at once.
A statement waiting longer than `TZUROT_MIGRATION_LOCK_TIMEOUT_SECONDS` for a lock makes the
run roll back and try again (tzurot.db.migrate.upgrade); each retry is logged.
"""

from __future__ import annotations

import sys

from pydantic import Field, SecretStr

from tzurot.db.engine import async_url, database_failure
from tzurot.db.heads import InstalledMigrations, installed_migrations
from tzurot.db.migrate import DEFAULT_LOCK_TIMEOUT_SECONDS, upgrade
from tzurot.runtime.config import ServiceSettings, secret_values
from tzurot.runtime.errors import StartupError
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service

__all__ = ["InstalledMigrations", "installed_migrations", "main"]


class UpgradeSettings(ServiceSettings):
    """The database URL and the migrations' lock timeout; no TLS is needed to migrate."""

    database_url: SecretStr
    tls_dir: None = None  # type: ignore[assignment]  # a migration speaks to Postgres only
    migration_lock_timeout_seconds: float = Field(
        default=DEFAULT_LOCK_TIMEOUT_SECONDS, gt=0, le=3600, allow_inf_nan=False
    )
    """How long a migration's statement waits for a lock (the queries queued behind it on
    that table wait as long) before its run rolls back and is tried again."""


async def _main() -> None:
    settings = UpgradeSettings.load()
    configure_logging(
        "migrate",
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=secret_values(settings),
    )
    migrations = installed_migrations()
    if not migrations:
        raise StartupError("no service migrations are installed in this environment")
    url = settings.database_url.get_secret_value()
    async_url(url)  # a malformed URL: one line quoting none of it (DatabaseUrlError)
    for migration in migrations:
        try:
            upgrade(
                migration.script_location,
                url,
                migration.schema,
                lock_timeout=settings.migration_lock_timeout_seconds,
            )
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
