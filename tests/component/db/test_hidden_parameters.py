"""A failing statement never puts its parameters (a user's message, a name) in an error or log."""

import logging

import pytest
import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tzurot.db.engine import create_engine
from tzurot.db.migrate import migration_engine
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

PRIVATE = "my very private message about my diagnosis"


@pytest.mark.parametrize("make", [create_engine, migration_engine], ids=["pool", "migrations"])
async def test_a_failing_statement_logs_no_user_content(
    fresh_database: DatabaseFactory, caplog: pytest.LogCaptureFixture, make: object
) -> None:
    engine = make(fresh_database())  # type: ignore[operator]  # the parametrized factory
    log = structlog.get_logger("test")
    caplog.set_level(logging.DEBUG)
    try:
        with pytest.raises(SQLAlchemyError) as caught:
            async with engine.connect() as conn:
                # Postgres cannot store NUL in text: the statement fails with the value bound.
                await conn.execute(
                    text("select cast(:content as text)"), {"content": PRIVATE + "\x00"}
                )
        try:
            raise caught.value
        except SQLAlchemyError:
            log.exception("store.failed")
            logging.getLogger("tzurot.test").exception("store.failed")
    finally:
        await engine.dispose()
    assert PRIVATE not in str(caught.value)
    assert PRIVATE not in repr(caught.value)
    assert PRIVATE not in caplog.text
