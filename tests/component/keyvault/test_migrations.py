"""Migrations up to head (0002) build exactly the tables of tables.py, and downgrades cleanly."""

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tzurot.db.engine import create_engine
from tzurot.db.migrate import current, downgrade, upgrade
from tzurot.keyvault.migrations import SCRIPT_LOCATION
from tzurot.keyvault.tables import SCHEMA, metadata

pytestmark = pytest.mark.component


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, _p: name == SCHEMA if type_ == "schema" else True,
            "version_table_schema": SCHEMA,
        },
    )
    return [
        change
        for change in compare_metadata(context, metadata)
        if not (change[0] == "remove_table" and change[1].name == "alembic_version")
    ]


async def test_head_matches_the_table_definitions(vault_url: str) -> None:
    assert current(SCRIPT_LOCATION, vault_url, SCHEMA) == "0002"
    engine = create_engine(vault_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_downgrade_and_upgrade_again(vault_url: str) -> None:
    downgrade(SCRIPT_LOCATION, vault_url, SCHEMA, "base")
    engine = create_engine(vault_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.scalars(
                text("select tablename from pg_tables where schemaname = :s"), {"s": SCHEMA}
            )
            assert set(tables) == {"alembic_version"}
        upgrade(SCRIPT_LOCATION, vault_url, SCHEMA)
        assert current(SCRIPT_LOCATION, vault_url, SCHEMA) == "0002"
    finally:
        await engine.dispose()
