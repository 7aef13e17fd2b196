"""A migration meeting a lock held by a live transaction gives up quickly and is tried again.

Without a lock_timeout, an ALTER TABLE queued for its ACCESS EXCLUSIVE lock behind a
replica's long transaction queues every later query on that table behind itself.
"""

import asyncio
import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from structlog.testing import capture_logs

from tzurot.db.engine import create_engine
from tzurot.db.migrate import (
    MigrationLockTimeout,
    current,
    ensure_schema,
    is_lock_timeout,
    upgrade,
)
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

LOCK_TIMEOUT = 0.2
"""Seconds: a fraction of one keeps these tests fast."""

ENV_PY = """
from sqlalchemy import MetaData

from tzurot.db.migrate import run_async_migrations

run_async_migrations(MetaData(schema="demo"), "demo")
"""

NOTES = """
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade():
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True), schema="demo")
"""

TAGS = """
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    op.create_table("tags", sa.Column("name", sa.Text, primary_key=True), schema="demo")
"""

# Notes each attempt, with the lock_timeout it runs under, in a file (a rolled-back
# transaction keeps nothing), then needs ACCESS EXCLUSIVE on demo.notes, or fails on its own.
ALTER_NOTES = """
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade():
    lock_timeout = op.get_bind().exec_driver_sql("show lock_timeout").scalar()
    with open({attempts!r}, "a") as attempts:
        attempts.write(f"{{lock_timeout}}\\n")
    if {fail!r}:
        op.execute("select 1 / 0")
    op.execute("alter table demo.notes add column body text")
"""


def _scripts(root: Path, *, fail: bool = False) -> str:
    (root / "versions").mkdir(parents=True)
    (root / "env.py").write_text(dedent(ENV_PY))
    (root / "versions" / "0001_notes.py").write_text(dedent(NOTES))
    (root / "versions" / "0002_tags.py").write_text(dedent(TAGS))
    migration = ALTER_NOTES.format(attempts=str(root / "attempts"), fail=fail)
    (root / "versions" / "0003_alter_notes.py").write_text(dedent(migration))
    return str(root)


def _attempts(scripts: str) -> list[str]:
    """The lock_timeout each attempt of revision 0003 ran under."""
    path = Path(scripts) / "attempts"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def migrated(fresh_database: DatabaseFactory, tmp_path: Path) -> tuple[str, str]:
    """(scripts, url): a database whose schema `demo` is at 0001, two revisions behind."""
    scripts = _scripts(tmp_path / "migrations")
    url = fresh_database()
    upgrade(scripts, url, "demo", revision="0001")
    return scripts, url


@asynccontextmanager
async def reader_of_notes(url: str) -> AsyncIterator[Callable[[], None]]:
    """A replica's long transaction that read demo.notes (ACCESS SHARE until it ends).

    Yields `end`, which makes it end; it ends anyway after 20 s, so a migration waiting
    without a lock timeout fails its test instead of hanging it."""
    done = asyncio.Event()
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("select count(*) from demo.notes"))

            async def hold() -> None:
                with suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 20)
                await connection.rollback()

            holder = asyncio.create_task(hold())
            try:
                yield done.set
            finally:
                done.set()
                await holder
    finally:
        await engine.dispose()


async def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.scalars(
                text(
                    "select column_name from information_schema.columns"
                    " where table_schema = 'demo' and table_name = :table"
                ),
                {"table": table},
            )
            return set(rows)
    finally:
        await engine.dispose()


async def test_a_lock_held_past_every_attempt_fails_and_changes_nothing(
    migrated: tuple[str, str],
) -> None:
    scripts, url = migrated
    async with reader_of_notes(url):
        started = time.monotonic()
        with pytest.raises(MigrationLockTimeout) as raised:
            await asyncio.to_thread(
                upgrade, scripts, url, "demo", lock_timeout=LOCK_TIMEOUT, lock_retry_pauses=[0.05]
            )
        elapsed = time.monotonic() - started

    assert elapsed < 5, "the lock timeout did not cut the wait short"
    assert _attempts(scripts) == ["200ms", "200ms"]  # the first attempt and one retry
    message = str(raised.value)
    assert "schema demo" in message
    assert "could not get a lock within 0.2 s in 2 attempt(s)" in message
    assert url not in message
    # One transaction: 0002's table went with 0003's failure.
    assert current(scripts, url, "demo") == "0001"
    assert await _columns(url, "notes") == {"id"}
    assert await _columns(url, "tags") == set()


async def test_a_lock_released_during_the_retries_lets_the_migration_through(
    migrated: tuple[str, str],
) -> None:
    scripts, url = migrated
    async with reader_of_notes(url) as end:
        asyncio.get_running_loop().call_later(1.5, end)
        with capture_logs() as logs:
            await asyncio.to_thread(
                upgrade,
                scripts,
                url,
                "demo",
                lock_timeout=LOCK_TIMEOUT,
                lock_retry_pauses=[0.1] * 30,
            )

    assert current(scripts, url, "demo") == "0003"
    assert await _columns(url, "notes") == {"id", "body"}
    assert await _columns(url, "tags") == {"name"}
    retries = [entry for entry in logs if entry["event"] == "migrate.lock_timeout"]
    attempts = _attempts(scripts)
    assert len(retries) == len(attempts) - 1 >= 2
    assert set(attempts) == {"200ms"}
    assert retries[0] == {
        "event": "migrate.lock_timeout",
        "log_level": "warning",
        "schema": "demo",
        "attempt": 1,
        "attempts": 31,
        "lock_timeout_seconds": LOCK_TIMEOUT,
        "retry_in_seconds": 0.1,
    }


async def test_a_caller_giving_up_ends_the_pause_before_the_next_attempt(
    migrated: tuple[str, str],
) -> None:
    """`tzurot up` migrates in a worker thread and sets `stopping` on Ctrl-C: the pause before
    the next attempt (a minute here) ends at once, and no attempt follows."""
    scripts, url = migrated
    migrate = functools.partial(upgrade, scripts, url, "demo", lock_timeout=LOCK_TIMEOUT)
    stopping = threading.Event()
    async with reader_of_notes(url):
        asyncio.get_running_loop().call_later(1.0, stopping.set)
        started = time.monotonic()
        with pytest.raises(MigrationLockTimeout) as raised:
            await asyncio.to_thread(migrate, lock_retry_pauses=[60.0], stopping=stopping)
        elapsed = time.monotonic() - started

    assert elapsed < 30, "the pause was slept in full"
    assert _attempts(scripts) == ["200ms"]
    assert "in 1 attempt(s)" in str(raised.value)
    assert current(scripts, url, "demo") == "0001"


async def test_a_failure_other_than_a_lock_is_not_retried(
    fresh_database: DatabaseFactory, tmp_path: Path
) -> None:
    scripts = _scripts(tmp_path / "migrations", fail=True)
    url = fresh_database()

    with capture_logs() as logs, pytest.raises(DBAPIError) as raised:
        await asyncio.to_thread(
            upgrade, scripts, url, "demo", lock_timeout=LOCK_TIMEOUT, lock_retry_pauses=[0.05] * 3
        )

    assert not is_lock_timeout(raised.value)
    assert getattr(raised.value.orig, "sqlstate", None) == "22012"  # division_by_zero
    assert _attempts(scripts) == ["200ms"]  # one attempt, under the lock timeout
    assert logs == []
    assert current(scripts, url, "demo") is None


def test_the_job_refuses_a_lock_timeout_that_is_not_positive() -> None:
    result = subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.db.upgrade"],
        env={
            "PATH": os.environ.get("PATH", ""),
            "TZUROT_DATABASE_URL": "postgresql://tz@/tzurot?host=/nonexistent-socket-dir",
            "TZUROT_MIGRATION_LOCK_TIMEOUT_SECONDS": "0",
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tzurot-migrate: cannot start: TZUROT_MIGRATION_LOCK_TIMEOUT_SECONDS: "
        "Input should be greater than 0"
    )


async def test_a_first_run_waits_for_another_first_run_creating_the_schema(
    fresh_database: DatabaseFactory,
) -> None:
    """Two first runs at once: the one that finds the schema being created waits for the
    other's migration lock, then finds it made, instead of failing on its own `create
    schema`."""
    url = fresh_database()
    engine = create_engine(url)
    try:
        async with engine.connect() as other:  # the other run, mid-transaction
            await other.execute(
                text("select pg_advisory_xact_lock(hashtext('tzurot.migrate.demo'))")
            )
            await other.execute(text("create schema demo"))
            ensuring = asyncio.create_task(asyncio.to_thread(ensure_schema, url, "demo"))
            await asyncio.sleep(0.5)
            assert not ensuring.done(), "ensure_schema did not wait for the migration lock"
            await other.commit()
        await asyncio.wait_for(ensuring, 20)  # no DuplicateSchemaError
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("select count(*) from pg_namespace where nspname = 'demo'")
            )
        assert found == 1
    finally:
        await engine.dispose()
