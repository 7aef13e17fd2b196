"""Global aliases are compared by key (a final sigma read as a sigma: name_lookups.alias_key):
the statements the name rules and lookups send, as they send them (bind parameters, prepared),
are served by the index of migration 0030 on that expression, for equality and for the prefix
an alias begins with, on enough aliases that a scan would be chosen otherwise (review 4 L5)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.gateway.store.alias_rules import refuse_alias
from tzurot.gateway.store.name_lookups import everyone_named as named
from tzurot.gateway.store.name_rules import _alias_begun_by
from tzurot.gateway.store.rows import LIVE_PERSONALITY

pytestmark = pytest.mark.component

INDEX = "personality_aliases_key_idx"


@contextmanager
def _sent(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent on `engine` that compare aliases by key, with their parameters."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "translate(core.personality_aliases.alias" in statement:
            sent.append((statement, parameters))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _plan(engine: AsyncEngine, statement: str, parameters: Any) -> str:
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql("EXPLAIN " + statement, parameters)
        return "\n".join(row[0] for row in rows)


@pytest.fixture
async def many_aliases(engine: AsyncEngine) -> None:
    """4,000 personalities with 5 aliases each, all beginning "alias"."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "insert into core.personalities (slug, display_name, system_prompt, public) "
                "select 'p' || g, 'Name ' || g, '', true from generate_series(1, 4000) g"
            )
        )
        await conn.execute(
            sa.text(
                "insert into core.personality_aliases (alias, personality_id, display) "
                "select 'alias ' || substr(slug, 2) || 'x' || k, id, 'alias' "
                "from core.personalities, generate_series(1, 5) k"
            )
        )
        await conn.execute(sa.text("analyze core.personalities"))
        await conn.execute(sa.text("analyze core.personality_aliases"))


async def test_alias_keys_are_found_through_their_index(
    engine: AsyncEngine, store: GatewayStore, many_aliases: None
) -> None:
    with _sent(engine) as sent:
        async with engine.connect() as conn:
            some = await conn.scalar(sa.text("select id from core.personalities limit 1"))
            # Allowed, after reading the alias's owner and the aliases it extends by key.
            assert await refuse_alias(conn, str(some), "new alias", named, field="alias")
            assert await _alias_begun_by(conn, "alias 77", [LIVE_PERSONALITY]) is None
        await AdminStore(store.engine, store.catalog).alias_owner("alias 77x2")
    equality = [s for s in sent if " = " in s[0] and "LIKE" not in s[0]]
    prefix = [s for s in sent if "LIKE" in s[0]]
    assert equality
    assert len(prefix) == 1  # "alias 77" goes on with digits: one statement
    for statement, parameters in [*equality, *prefix]:
        plan = await _plan(engine, statement, parameters)
        assert INDEX in plan, plan
