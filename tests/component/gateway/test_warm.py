"""Gateway's warm-up: the turn's statements are compiled before SERVING, and no row changes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.store.job_finish_sql import DELIVER, FINISH_JOB_ALONE, JOB_BY_ID
from tzurot.gateway.warm import NO_JOB, NO_MATCH, warm_statements

pytestmark = pytest.mark.component

PREPARED = direct.Statement("select statement from pg_prepared_statements")


def _compiled(engine: AsyncEngine) -> int:
    cache = engine.sync_engine._compiled_cache
    assert cache is not None
    return len(cache)


async def test_warm_up_fills_the_statement_cache_and_changes_nothing(
    engine: AsyncEngine, store: GatewayStore
) -> None:
    before = _compiled(engine)
    await warm_statements(store)
    warmed = _compiled(engine)
    assert warmed >= before + 3  # personality, job by key, config
    # The job by id, finish and deliver run through tzurot.db.direct: compiled there.
    for statement in (JOB_BY_ID, FINISH_JOB_ALONE, DELIVER):
        assert statement.compiled_for(engine.dialect)

    # The first turn's statements now come from the cache: running them again compiles nothing.
    await store.find_personality(NO_MATCH + "2")
    await store.get_job_by_key("another key")
    await store.get_job_with_context(NO_JOB)
    assert _compiled(engine) == warmed

    async with engine.connect() as conn:
        # The turn's context upserts the user: rolled back. No bucket was taken or made.
        tables = (t.jobs, t.usage_log, t.personalities, t.users, g.channel_state, t.rate_buckets)
        for table in tables:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(table)) == 0
        # The statements sent as SQL text (no compiled form) are prepared all the same (on the
        # direct pool's connection: they run through tzurot.db.direct).
        prepared = list(await conn.scalars(sa.text("select statement from pg_prepared_statements")))
    prepared += [row["statement"] for row in await direct.fetch(engine, PREPARED)]
    assert any("INSERT INTO core.users" in statement for statement in prepared)
    assert any("core.rate_buckets" in statement for statement in prepared)
