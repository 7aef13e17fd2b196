"""The migrations build exactly the tables of tables.py, and downgrades cleanly."""

from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tzurot.db.engine import create_engine
from tzurot.db.migrate import current, downgrade, upgrade
from tzurot.memory.migrations import SCHEMA as MIGRATIONS_SCHEMA
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.tables import SCHEMA, metadata
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

HEAD = "0013"
TABLES = {
    "alembic_version",
    "turns",
    "memories",
    "waypoints",
    "memory_modes",
    "formation_outbox",
    "memory_uses",
    "fact_outbox",
    "forgotten",
}


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


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalars(
                text("select tablename from pg_tables where schemaname = :s"), {"s": SCHEMA}
            )
            return set(found)
    finally:
        await engine.dispose()


async def _indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = await conn.scalars(
                text("select indexname from pg_indexes where schemaname = :s"), {"s": SCHEMA}
            )
            return set(found)
    finally:
        await engine.dispose()


def test_schema_names_agree() -> None:
    assert MIGRATIONS_SCHEMA == SCHEMA == "memory"


async def test_head_matches_the_table_definitions(memory_url: str) -> None:
    assert current(SCRIPT_LOCATION, memory_url, SCHEMA) == HEAD
    engine = create_engine(memory_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            # A search reads these of every memory in scope: kept in the row (0010).
            storage = await conn.execute(
                sa.text(
                    "SELECT attname, attstorage::text FROM pg_attribute"
                    " WHERE attrelid = 'memory.memories'::regclass"
                    " AND attname IN ('embedding', 'search_text')"
                )
            )
            assert dict(storage.all()) == {"embedding": "m", "search_text": "m"}
    finally:
        await engine.dispose()
    assert await _indexes(memory_url) >= {
        "turns_pkey",
        "turns_job_position_key",
        "turns_history_idx",
        "turns_message_ids_idx",
        "turns_user_idx",
        "memories_pkey",
        "memories_scope_idx",
        "memories_embedding_idx",
        "memories_search_text_idx",
        "waypoints_pkey",
        "waypoints_dst_idx",
    }


async def test_upgrade_downgrade_upgrade(memory_url: str) -> None:
    downgrade(SCRIPT_LOCATION, memory_url, SCHEMA, "base")
    assert current(SCRIPT_LOCATION, memory_url, SCHEMA) is None
    assert await _tables(memory_url) == {"alembic_version"}
    upgrade(SCRIPT_LOCATION, memory_url, SCHEMA)
    assert current(SCRIPT_LOCATION, memory_url, SCHEMA) == HEAD
    assert await _tables(memory_url) == TABLES
    upgrade(SCRIPT_LOCATION, memory_url, SCHEMA)  # at head already: a no-op
    assert current(SCRIPT_LOCATION, memory_url, SCHEMA) == HEAD


async def test_0004_repairs_source_turns_polluted_by_merge(fresh_database: DatabaseFactory) -> None:
    """Rows polluted by the old uncorrelated merge keep only turns of their own scope."""
    url = fresh_database()
    upgrade(SCRIPT_LOCATION, url, SCHEMA, "0003")
    engine = create_engine(url)
    turn = {"alice": "11111111-1111-1111-1111-111111111111"}
    turn["bob"] = "22222222-2222-2222-2222-222222222222"
    turn["other"] = "33333333-3333-3333-3333-333333333333"
    polluted = sorted(turn.values())
    try:
        async with engine.begin() as conn:
            for name, user, persona in (
                ("alice", "ua", "p1"),
                ("bob", "ub", "p1"),
                ("other", "ua", "p2"),
            ):
                await conn.execute(
                    text(
                        "insert into memory.turns (id, job_id, position, channel_id,"
                        " personality_id, user_id, role)"
                        " values (:id, :job, 0, 'c', :p, :u, 'user')"
                    ),
                    {"id": turn[name], "job": name, "p": persona, "u": user},
                )
            for user in ("ua", "ub", ""):
                await conn.execute(
                    text(
                        "insert into memory.memories (personality_id, user_id, text, embedding,"
                        " sector, salience, source_turn_ids) values ('p1', :u, 'm', :v,"
                        " 'semantic', 0.5, :ids)"
                    ),
                    {"u": user, "v": "[" + ",".join(["0.1"] * 384) + "]", "ids": polluted},
                )
        upgrade(SCRIPT_LOCATION, url, SCHEMA)
        async with engine.connect() as conn:
            rows: dict[str, list[str]] = dict(
                (
                    await conn.execute(text("select user_id, source_turn_ids from memory.memories"))
                ).all()
            )
    finally:
        await engine.dispose()
    assert rows == {
        "ua": [turn["alice"]],
        "ub": [turn["bob"]],
        "": sorted([turn["alice"], turn["bob"]]),
    }
