"""check_database fails fast in one line and never shows the password."""

import socket

import pytest
from sqlalchemy import text

from tzurot.db.engine import check_database, create_engine, session_factory
from tzurot.db.errors import DatabaseRefused
from tzurot.db.heads import script_heads
from tzurot.db.migrate import upgrade
from tzurot.keyvault.migrations import SCHEMA, SCRIPT_LOCATION
from tzurot.runtime.errors import StartupError
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component


def _messages(exc: BaseException) -> list[str]:
    """Every message along the exception's cause/context chain."""
    found: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(found) < 20:
        found += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return found


async def test_no_server_gives_one_line_without_the_password() -> None:
    engine = create_engine("postgresql://u:hunter2@/db?host=/nonexistent", connect_timeout=5)
    try:
        with pytest.raises(StartupError) as caught:
            await check_database(engine, "core")
    finally:
        await engine.dispose()

    message = str(caught.value)
    assert message.startswith("cannot reach the database at /nonexistent db=db: no server socket")
    assert "\n" not in message
    assert not any("hunter2" in text for text in _messages(caught.value))


async def test_missing_database_is_named(postgres_url: str) -> None:
    url = postgres_url.replace("/postgres?", "/no_such_db?")
    engine = create_engine(url)
    try:
        with pytest.raises(
            DatabaseRefused, match=r'db=no_such_db refused the connection: .*"no_such_db" does not'
        ):
            await check_database(engine, "core")
    finally:
        await engine.dispose()


async def test_missing_schema_asks_for_migrations(fresh_database: DatabaseFactory) -> None:
    engine = create_engine(fresh_database())
    try:
        with pytest.raises(StartupError, match="no schema 'core': run `tzurot migrate`"):
            await check_database(engine, "core")
    finally:
        await engine.dispose()


async def test_ready_database_passes(fresh_database: DatabaseFactory) -> None:
    engine = create_engine(fresh_database())
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("create schema core")
        await check_database(engine, "core")
    finally:
        await engine.dispose()


async def test_a_schema_behind_its_migrations_is_refused(fresh_database: DatabaseFactory) -> None:
    """A service started before its migration ran would fail every request that meets a new
    column: it refuses to start instead, naming both revisions."""
    url = fresh_database()
    upgrade(SCRIPT_LOCATION, url, SCHEMA)
    head = script_heads(SCRIPT_LOCATION)
    assert head is not None
    engine = create_engine(url)
    try:
        await check_database(engine, SCHEMA, script_location=SCRIPT_LOCATION)  # at head: runs
        async with engine.begin() as connection:
            await connection.execute(
                text(f"update {SCHEMA}.alembic_version set version_num = '0001'")  # noqa: S608
            )
        with pytest.raises(StartupError) as caught:
            await check_database(engine, SCHEMA, script_location=SCRIPT_LOCATION)
        assert str(caught.value).endswith(
            f"the schema {SCHEMA!r} is at revision 0001 and this release needs "
            f"{', '.join(sorted(head))}: run `tzurot migrate` first"
        )
        async with engine.begin() as connection:  # a newer release's revision: a rollback
            await connection.execute(
                text(f"update {SCHEMA}.alembic_version set version_num = 'zz-newer'")  # noqa: S608
            )
        await check_database(engine, SCHEMA, script_location=SCRIPT_LOCATION)
    finally:
        await engine.dispose()


async def test_a_schema_no_migration_made_is_refused(fresh_database: DatabaseFactory) -> None:
    engine = create_engine(fresh_database())
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"create schema {SCHEMA}")
        with pytest.raises(StartupError, match=f"the schema {SCHEMA!r} was never migrated"):
            await check_database(engine, SCHEMA, script_location=SCRIPT_LOCATION)
    finally:
        await engine.dispose()


async def test_refused_tcp_connection_says_so() -> None:
    with socket.socket() as probe:  # a port that was just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_engine(f"postgresql://u:hunter2@127.0.0.1:{port}/core")
    try:
        with pytest.raises(StartupError) as caught:
            await check_database(engine, "core")
    finally:
        await engine.dispose()

    assert str(caught.value) == (
        f"cannot reach the database at 127.0.0.1:{port} db=core: connection refused"
    )


async def test_sessions_see_the_server_settings(fresh_database: DatabaseFactory) -> None:
    engine = create_engine(fresh_database(), server_settings={"application_name": "tz-test"})
    try:
        async with session_factory(engine)() as session, session.begin():
            name = await session.scalar(text("select current_setting('application_name')"))
        assert name == "tz-test"
    finally:
        await engine.dispose()
