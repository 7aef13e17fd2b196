"""upgrade/downgrade/current run a service's Alembic scripts inside its own schema."""

from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import text

from tzurot.db.engine import create_engine
from tzurot.db.migrate import current, downgrade, upgrade
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

ENV_PY = """
from sqlalchemy import MetaData

from tzurot.db.migrate import run_async_migrations

run_async_migrations(MetaData(schema="demo"), "demo")
"""

FIRST = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("body", sa.Text, nullable=False),
        schema="demo",
    )


def downgrade():
    op.drop_table("notes", schema="demo")
"""

SECOND = """
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.create_table("tags", sa.Column("name", sa.Text, primary_key=True), schema="demo")


def downgrade():
    op.drop_table("tags", schema="demo")
"""


@pytest.fixture
def scripts(tmp_path: Path) -> str:
    """A throwaway migrations dir: env.py plus two revisions in schema `demo`."""
    root = tmp_path / "migrations"
    (root / "versions").mkdir(parents=True)
    (root / "env.py").write_text(dedent(ENV_PY))
    (root / "versions" / "0001_notes.py").write_text(dedent(FIRST))
    (root / "versions" / "0002_tags.py").write_text(dedent(SECOND))
    return str(root)


async def _tables(url: str) -> set[tuple[str, str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "select table_schema, table_name from information_schema.tables"
                    " where table_schema not in ('pg_catalog', 'information_schema')"
                )
            )
            return {(schema, name) for schema, name in rows}
    finally:
        await engine.dispose()


async def _execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


async def _scalar(url: str, sql: str) -> object:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(text(sql))
    finally:
        await engine.dispose()


def test_upgrade_creates_schema_tables_and_version_table(
    scripts: str, fresh_database: DatabaseFactory
) -> None:
    url = fresh_database()
    assert current(scripts, url, "demo") is None

    upgrade(scripts, url, "demo")

    assert current(scripts, url, "demo") == "0002"


async def test_everything_lands_inside_the_schema(
    scripts: str, fresh_database: DatabaseFactory
) -> None:
    url = fresh_database()

    upgrade(scripts, url, "demo")  # called inside a running event loop, as `tzurot up` does

    assert await _tables(url) == {
        ("demo", "alembic_version"),
        ("demo", "notes"),
        ("demo", "tags"),
    }


async def test_upgrade_is_idempotent_and_keeps_data(
    scripts: str, fresh_database: DatabaseFactory
) -> None:
    url = fresh_database()
    upgrade(scripts, url, "demo")
    await _execute(url, "insert into demo.notes (body) values ('kept')")

    upgrade(scripts, url, "demo")

    assert current(scripts, url, "demo") == "0002"
    assert await _scalar(url, "select body from demo.notes") == "kept"


async def test_upgrade_to_a_revision_then_downgrade(
    scripts: str, fresh_database: DatabaseFactory
) -> None:
    url = fresh_database()
    upgrade(scripts, url, "demo", revision="0001")
    assert current(scripts, url, "demo") == "0001"
    assert ("demo", "tags") not in await _tables(url)

    upgrade(scripts, url, "demo")
    downgrade(scripts, url, "demo", "-1")
    assert current(scripts, url, "demo") == "0001"
    assert ("demo", "tags") not in await _tables(url)

    downgrade(scripts, url, "demo", "base")
    assert current(scripts, url, "demo") is None
    assert await _tables(url) == {("demo", "alembic_version")}


def test_env_refuses_a_different_schema(scripts: str, fresh_database: DatabaseFactory) -> None:
    with pytest.raises(
        ValueError, match=r"env\.py migrates schema 'demo' but was asked for 'core'"
    ):
        upgrade(scripts, fresh_database(), "core")
