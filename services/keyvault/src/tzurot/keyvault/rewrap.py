"""`python -m tzurot.keyvault.rewrap`: re-encrypt every stored key under the newest master key.

The key-rotation CronJob runs this in the keyvault image, as keyvault (same service account,
same master-key Secret, Postgres only): rotating is adding a `<version>:<key>` line to the
master key, rolling keyvault out, then this. It is idempotent and resumable; with nothing
stale it reports zero and exits 0.
"""

from __future__ import annotations

import structlog

from tzurot.db.engine import check_database, create_engine
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.keyvault.domain import RewrapProgress
from tzurot.keyvault.masterkey import (
    master_key_secrets,
    parse_master_key_ring,
    read_master_key_text,
)
from tzurot.keyvault.migrations import SCRIPT_LOCATION
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.keyvault.tables import SCHEMA
from tzurot.runtime.config import secret_values
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.main import run_service

log = structlog.get_logger(__name__)


async def rewrap_all(settings: KeyVaultSettings) -> RewrapProgress | None:
    """Runs the re-encryption to the end; returns the last progress report."""
    master_text = read_master_key_text(settings.master_key, settings.master_key_file)
    ring = parse_master_key_ring(master_text)
    engine = create_engine(
        settings.database_url.get_secret_value(),
        server_settings={"application_name": "keyvault-rewrap"},
    )
    last: RewrapProgress | None = None
    try:
        await check_database(engine, SCHEMA, script_location=SCRIPT_LOCATION)
        vault = KeyVault(
            PostgresKeyStore(engine), ring, default_batch_size=settings.rewrap_batch_size
        )
        async for progress in vault.rewrap():
            last = progress
            log.info(
                "rewrap.progress",
                master_key_version=progress.master_key_version,
                rewrapped=progress.rewrapped,
                total=progress.total,
            )
    finally:
        await engine.dispose()
    return last


async def _main() -> None:
    settings = KeyVaultSettings.load()
    master_text = read_master_key_text(settings.master_key, settings.master_key_file)
    configure_logging(
        "keyvault-rewrap",
        level=settings.log_level,
        fmt=settings.log_format,
        secrets=[*secret_values(settings), *master_key_secrets(master_text)],
    )
    last = await rewrap_all(settings)
    log.info("rewrap.done", rewrapped=last.rewrapped if last else 0)


def main() -> None:
    run_service("keyvault-rewrap", _main)


if __name__ == "__main__":
    main()
