"""What every part of the store shares: the engine, and the catalog cache writes clear."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.gateway.cache import TtlCache

# Imports and alias writes take this lock: alias clashes are checked in code, one at a time.
ALIAS_LOCK = "tzurot.core.personality_import"


def alias_lock() -> sa.Select[Any]:
    return sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(ALIAS_LOCK)))


def lease_from_now(seconds: float) -> sa.ColumnElement[Any]:
    """The end of a lease of `seconds` taken now, by Postgres' clock (every replica agrees)."""
    return sa.func.clock_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


class SqlBase:
    """The engine, and `_autocommit` for single statements (no BEGIN/COMMIT round trips)."""

    _engine: AsyncEngine
    _autocommit: AsyncEngine


class AdminSqlBase(SqlBase):
    """Base of the admin store's parts: writes to the catalog clear its cache."""

    _catalog: TtlCache[Any] | None  # GatewayStore.catalog

    @asynccontextmanager
    async def _catalog_write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction writing personalities, aliases or configs; clears the catalog cache."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        finally:
            if self._catalog is not None:
                self._catalog.clear()
