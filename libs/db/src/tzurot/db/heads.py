"""Is every schema already at head? One query per schema, without importing Alembic.

`tzurot up` migrates every start; almost always there is nothing to do, and importing Alembic,
SQLAlchemy and each service's tables only to learn that costs about a second of CPU. Here the
heads are read from the scripts' own `revision = "…"` / `down_revision = "…"` lines and
compared with `alembic_version` over a bare asyncpg connection. Anything this cannot read
for certain (a script without a literal revision, no version table, no connection) answers
"not known to be at head", and the caller runs Alembic as before; a unit test checks these
heads against Alembic's own for every installed service.

Only the standard library is imported at module level (asyncpg when a check runs).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg  # type: ignore[import-untyped]

_REVISION = re.compile(r"^revision(?:\s*:[^=]*)?\s*=\s*['\"]([^'\"]+)['\"]\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:\s*:[^=]*)?\s*=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")
_SCHEME_DRIVER = re.compile(r"^(postgres(?:ql)?)\+[A-Za-z0-9_]+://")


@dataclass(frozen=True)
class InstalledMigrations:
    service: str
    schema: str
    script_location: str


def installed_migrations() -> list[InstalledMigrations]:
    """Every service's migrations declared in the `tzurot.migrations` entry point group."""
    found = []
    for ep in entry_points(group="tzurot.migrations"):
        module = importlib.import_module(ep.module)
        found.append(InstalledMigrations(ep.name, module.SCHEMA, module.SCRIPT_LOCATION))
    return sorted(found, key=lambda m: m.service)


def script_heads(script_location: str) -> frozenset[str] | None:
    """The head revisions of the scripts in `script_location/versions`, read from their
    `revision` / `down_revision` lines; None when a script does not state them literally."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((Path(script_location) / "versions").glob("*.py")):
        source = path.read_text()
        revision = _REVISION.findall(source)
        down = _DOWN_REVISION.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        if down[0] != "None":
            named = _QUOTED.findall(down[0])
            if not named:
                return None
            parents.update(named)
    if not revisions or not parents <= revisions:
        return None
    return frozenset(revisions - parents)


def script_revisions(script_location: str) -> frozenset[str] | None:
    """Every revision of the scripts in `script_location/versions`; None when a script does
    not state its revision literally."""
    revisions: set[str] = set()
    for path in sorted((Path(script_location) / "versions").glob("*.py")):
        found = _REVISION.findall(path.read_text())
        if len(found) != 1:
            return None
        revisions.add(found[0])
    return frozenset(revisions) or None


def migration_problem(schema: str, at: frozenset[str], script_location: str) -> str | None:
    """Why a service whose migrations are at `script_location` cannot run on `schema` at
    revisions `at` (empty: no `alembic_version`), or None when it can.

    Behind its head, it cannot: its statements would name columns and tables that are not
    there yet. A revision these scripts do not know is a newer release's (a rollback of the
    code, not of the schema): migrations add before they remove, so that runs. When the
    scripts cannot be read for certain, nothing is refused."""
    heads = script_heads(script_location)
    known = script_revisions(script_location)
    if heads is None or known is None or at == heads or at - known:
        return None
    if not at:
        return f"the schema {schema!r} was never migrated: run `tzurot migrate` first"
    return (
        f"the schema {schema!r} is at revision {', '.join(sorted(at))} and this release needs "
        f"{', '.join(sorted(heads))}: run `tzurot migrate` first"
    )


def libpq_url(url: str) -> str:
    """`postgresql+asyncpg://…` → `postgresql://…` (what asyncpg itself accepts)."""
    return _SCHEME_DRIVER.sub(r"\1://", url)


async def behind_head(
    url: str, migrations: Sequence[InstalledMigrations]
) -> list[InstalledMigrations]:
    """Those of `migrations` whose schema is not known to be at head (all of them when the
    database cannot be asked): one connection, one short query per schema."""
    import asyncpg  # noqa: PLC0415 - loaded only when a check runs

    try:
        connection = await asyncpg.connect(libpq_url(url), timeout=10)
    except (OSError, asyncpg.PostgresError, ValueError, TimeoutError):
        return list(migrations)
    try:
        behind = []
        for migration in migrations:
            heads = script_heads(migration.script_location)
            at = await _schema_revisions(connection, migration.schema)
            if heads is None or at != heads:
                behind.append(migration)
        return behind
    finally:
        await connection.close()


async def _schema_revisions(connection: asyncpg.Connection, schema: str) -> frozenset[str] | None:
    """The revisions in `schema.alembic_version`; None without such a table."""
    table = await connection.fetchval(
        "select to_regclass(format('%I.alembic_version', $1::text))::text", schema
    )
    if table is None:
        return None
    quoted = '"' + schema.replace('"', '""') + '"'
    rows = await connection.fetch(f"select version_num from {quoted}.alembic_version")  # noqa: S608 - a quoted identifier, not a value
    return frozenset(row["version_num"] for row in rows)
