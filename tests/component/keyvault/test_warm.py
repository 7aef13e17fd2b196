"""Keyvault's warm-up: Decrypt's statement (its read and audit row) is prepared before
SERVING, and nothing is kept."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.keyvault.store import PostgresKeyStore
from tzurot.keyvault.tables import api_keys, audit_log
from tzurot.keyvault.warm import warm_up

pytestmark = pytest.mark.component


async def test_warm_up_prepares_decrypts_statement_and_keeps_nothing(engine: AsyncEngine) -> None:
    store = PostgresKeyStore(engine)
    await warm_up(engine, store)

    async with engine.connect() as conn:
        for table in (api_keys, audit_log):
            assert await conn.scalar(sa.select(sa.func.count()).select_from(table)) == 0
        prepared = await conn.scalars(sa.text("select statement from pg_prepared_statements"))
        assert any("FROM vault.api_keys" in statement for statement in prepared)
