"""Core statements compiled once, executed as SQL text (the hot paths' statements).

`conn.execute(statement, params)` costs SQLAlchemy a cache key (a walk of the whole statement)
and a compiled-cache lookup on every call, and a result processor per column; for a wide
`INSERT … ON CONFLICT … RETURNING *` that is most of a short query's CPU. `Precompiled`
compiles the statement once for asyncpg and sends its SQL through `exec_driver_sql` (the
same connection, events and statement counting), with the values in the compiled order.

Rows are the driver's: UUID columns arrive as `uuid.UUID` (`str()` them), json/jsonb as
decoded values (the dialect's codecs), arrays as lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


class Precompiled:
    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_DIALECT)  # type: ignore[attr-defined]
        if any(bind.expanding for bind in compiled.binds.values()):
            # An IN list is expanded per call: write it as OR-ed comparisons, or = ANY(array).
            raise ValueError("a statement with in_(a list) cannot be precompiled")
        self.sql: str = compiled.string
        self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        processors = compiled._bind_processors
        self._processors = {name: processors[name] for name in self._names if name in processors}
        # Values the statement fixes itself (literals bound as parameters).
        self._fixed: dict[str, Any] = {
            name: bind.effective_value
            for name, bind in compiled.binds.items()
            if not bind.required and name in self._names
        }

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The positional values for `params` (by bind parameter name)."""
        out = []
        fixed = self._fixed
        processors = self._processors
        for name in self._names:
            value = params[name] if name in params else fixed[name]
            processor = processors.get(name)
            out.append(value if processor is None or value is None else processor(value))
        return tuple(out)

    async def execute(
        self, conn: AsyncConnection, params: Mapping[str, Any] | None = None
    ) -> CursorResult[Any]:
        return await conn.exec_driver_sql(self.sql, self.values(params or {}))
