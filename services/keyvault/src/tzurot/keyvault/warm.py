"""Keyvault's warm-up before it reports SERVING: the first Decrypt after start pays no
first-use costs that the next one does not.

Decrypt's statement (its read and its audit row) runs once for a user that has no key, in a
transaction that is rolled back, which fills the pooled connection's prepared statement and
the database backend's catalog caches for it (on every connection the pool opens later too:
`tzurot.db.warm`). No audit row is kept.
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.warm import warm_pool
from tzurot.keyvault.store import PostgresKeyStore

log = structlog.get_logger(__name__)

NO_USER = "\x7fwarm-up"  # user ids are "discord:<snowflake>" and the like, never a DEL


async def warm_statements(store: PostgresKeyStore) -> None:
    """Decrypt's statement, run once for a user with no key and rolled back."""
    await store.warm_decrypt(NO_USER, "openrouter")


async def warm_up(engine: AsyncEngine, store: PostgresKeyStore) -> None:
    """Warms Decrypt's statement on every pooled connection."""
    started = time.process_time()
    statements = await warm_pool(engine, lambda: warm_statements(store))
    cpu = round(time.process_time() - started, 3)
    log.info("keyvault.warm", statements=statements, cpu_seconds=cpu)
