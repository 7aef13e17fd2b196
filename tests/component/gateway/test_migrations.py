"""Migrations build exactly the tables of tables.py, and downgrades cleanly."""

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from tzurot.db.engine import create_engine
from tzurot.db.migrate import current, downgrade, upgrade
from tzurot.gateway import group_tables  # noqa: F401  # its tables join `metadata`
from tzurot.gateway.migrations import SCHEMA, SCRIPT_LOCATION
from tzurot.gateway.tables import metadata, personality_aliases

pytestmark = pytest.mark.component

HEAD = "0030"


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={
            "include_schemas": True,
            "include_name": lambda name, type_, _p: name == SCHEMA if type_ == "schema" else True,
            "version_table_schema": SCHEMA,
            "compare_server_default": True,
        },
    )
    return [
        change
        for change in compare_metadata(context, metadata)
        if not (
            isinstance(change, tuple)
            and change[0] == "remove_table"
            and change[1].name == "alembic_version"
        )
    ]


def _columns(connection: Connection) -> dict[str, set[str]]:
    inspector = sa.inspect(connection)
    return {
        table: {column["name"] for column in inspector.get_columns(table, schema=SCHEMA)}
        for table in inspector.get_table_names(schema=SCHEMA)
        if table != "alembic_version"
    }


async def test_head_matches_the_table_definitions(migrated_url: str) -> None:
    assert current(SCRIPT_LOCATION, migrated_url, SCHEMA) == HEAD
    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_columns) == {
                table.name: {column.name for column in table.columns}
                for table in metadata.tables.values()
            }
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_downgrade_and_upgrade_again(migrated_url: str) -> None:
    downgrade(SCRIPT_LOCATION, migrated_url, SCHEMA, "base")
    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.scalars(
                sa.text("select tablename from pg_tables where schemaname = :s"), {"s": SCHEMA}
            )
            assert set(tables) == {"alembic_version"}
        upgrade(SCRIPT_LOCATION, migrated_url, SCHEMA)
        assert current(SCRIPT_LOCATION, migrated_url, SCHEMA) == HEAD
        async with engine.connect() as conn:
            assert set(await conn.run_sync(_columns)) == {t.name for t in metadata.tables.values()}
            assert await conn.run_sync(_diff) == []
    finally:
        await engine.dispose()


ALIAS_KEY_INDEX = (
    "CREATE INDEX personality_aliases_key_idx ON core.personality_aliases USING btree "
    "(translate(alias, '\u03c2'::text, '\u03c3'::text) text_pattern_ops)"
)
"""Aliases by key (store/name_lookups.alias_key); the operator class is what lets the prefix
check (`LIKE key || '%'`) use it under any collation. Autogenerate compares the expression
but not the operator class, so both are checked here."""


async def test_the_alias_key_index_keeps_its_operator_class(migrated_url: str) -> None:
    (index,) = (i for i in personality_aliases.indexes if i.name == "personality_aliases_key_idx")
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    ddl = str(sa.schema.CreateIndex(index).compile(dialect=dialect))
    assert ddl.endswith("(translate(alias, '\u03c2', '\u03c3') text_pattern_ops)")
    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            indexdef = await conn.scalar(
                sa.text("select indexdef from pg_indexes where schemaname = :s and indexname = :i"),
                {"s": SCHEMA, "i": "personality_aliases_key_idx"},
            )
        assert indexdef == ALIAS_KEY_INDEX
    finally:
        await engine.dispose()


async def test_0002_downgrades_to_0001_keeping_its_tables(migrated_url: str) -> None:
    downgrade(SCRIPT_LOCATION, migrated_url, SCHEMA, "0001")
    assert current(SCRIPT_LOCATION, migrated_url, SCHEMA) == "0001"
    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(_columns)
        assert set(columns) == {
            "users",
            "llm_configs",
            "personalities",
            "personality_aliases",
            "jobs",
            "usage_log",
        }
        assert "heartbeat_at" not in columns["jobs"]
    finally:
        await engine.dispose()
    upgrade(SCRIPT_LOCATION, migrated_url, SCHEMA)
    assert current(SCRIPT_LOCATION, migrated_url, SCHEMA) == HEAD


async def test_0003_downgrades_to_0002_dropping_the_job_context(migrated_url: str) -> None:
    downgrade(SCRIPT_LOCATION, migrated_url, SCHEMA, "0002")
    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(_columns)
        assert "heartbeat_at" in columns["jobs"]
        assert not {"user_content", "user_attachments", "prompt_report", "reasoning"} & set(
            columns["jobs"]
        )
    finally:
        await engine.dispose()
    upgrade(SCRIPT_LOCATION, migrated_url, SCHEMA)
    assert current(SCRIPT_LOCATION, migrated_url, SCHEMA) == HEAD


async def test_0005_downgrades_to_0004_dropping_skills_and_image_counts(migrated_url: str) -> None:
    downgrade(SCRIPT_LOCATION, migrated_url, SCHEMA, "0004")
    engine = create_engine(migrated_url)
    try:
        async with engine.connect() as conn:
            columns = await conn.run_sync(_columns)
        assert "skills" not in columns["personalities"]
        assert "images" not in columns["usage_log"]
        assert "prompt_report" in columns["jobs"]
    finally:
        await engine.dispose()
    upgrade(SCRIPT_LOCATION, migrated_url, SCHEMA)
    assert current(SCRIPT_LOCATION, migrated_url, SCHEMA) == HEAD
