"""`tzurot migrate` through the real console script, against a fresh database: every
installed service's schema (core, memory, vault) is brought to its head revision, and it says
which migrations it applied; a second run changes nothing and says every schema is at head and
the database up to date. A schema one migration behind is given that one, and said so.

Both ways of naming the database are used: `--database-url`, `TZUROT_DATABASE_URL`, and
none (the embedded Postgres under `--data-dir`, as `tzurot up` keeps it).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from tzurot.cli.localdb import local_postgres
from tzurot.db.heads import installed_migrations, libpq_url, script_heads
from tzurot.db.migrate import downgrade
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.e2e

TZUROT = Path(sys.executable).parent / "tzurot"
"""The console script, as installed (what an operator types)."""
SCHEMAS = {"gateway": "core", "keyvault": "vault", "memory": "memory"}


async def tzurot(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    process = await asyncio.create_subprocess_exec(
        str(TZUROT),
        *args,
        env={**clean, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def heads() -> dict[str, frozenset[str]]:
    """schema -> the head revision(s) of the installed service's migration scripts."""
    found = {}
    for migration in installed_migrations():
        head = script_heads(migration.script_location)
        assert head, migration
        found[migration.schema] = head
    return found


async def revisions(url: str) -> dict[str, frozenset[str]]:
    """schema -> the revisions in its alembic_version table (schemas that have one)."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        tables = await conn.fetch(
            "select table_schema from information_schema.tables"
            " where table_name = 'alembic_version'"
        )
        found = {}
        for row in tables:
            schema = row["table_schema"]
            rows = await conn.fetch(f'select version_num from "{schema}".alembic_version')  # noqa: S608 - a name from the catalogue
            found[schema] = frozenset(r["version_num"] for r in rows)
        return found
    finally:
        await conn.close()


async def catalogue(url: str) -> list[tuple[str, ...]]:
    """Every column of every table in the services' schemas, and the version rows' xmin
    (a transaction that rewrote a version row would show in it)."""
    conn = await asyncpg.connect(libpq_url(url))
    try:
        columns = await conn.fetch(
            "select table_schema, table_name, column_name, data_type"
            " from information_schema.columns where table_schema = any($1::text[])"
            " order by 1, 2, 3",
            list(SCHEMAS.values()),
        )
        stamps = [
            (schema, str(await conn.fetchval(f'select xmin::text from "{schema}".alembic_version')))  # noqa: S608 - our own names
            for schema in SCHEMAS.values()
        ]
        return [tuple(r) for r in columns] + stamps
    finally:
        await conn.close()


AT_HEAD = [f"{service}: schema {schema} is at head" for service, schema in sorted(SCHEMAS.items())]
UP_TO_DATE = [*AT_HEAD, "The database is up to date: no migration to apply."]


def scripts(service: str) -> list[str]:
    """The migration scripts of an installed service, by file name, oldest first (their
    names begin with their number)."""
    location = next(m.script_location for m in installed_migrations() if m.service == service)
    return sorted(p.stem for p in (Path(location) / "versions").glob("*.py"))


def all_applied() -> list[str]:
    """What a run on a fresh database says: every script of every schema."""
    lines, count = [], 0
    for service, schema in sorted(SCHEMAS.items()):
        names = scripts(service)
        count += len(names)
        listed = ", ".join(names) if len(names) <= 4 else f"{names[0]} … {names[-1]}"
        many = "migration" if len(names) == 1 else "migrations"
        lines.append(
            f"{service}: schema {schema} is at head: applied {len(names)} {many} ({listed})"
        )
    return [*lines, f"Applied {count} migrations."]


async def test_migrate_brings_a_fresh_database_to_head_and_a_second_run_is_a_no_op(
    fresh_database: DatabaseFactory,
) -> None:
    assert {m.service: m.schema for m in installed_migrations()} == SCHEMAS
    url = fresh_database()
    assert await revisions(url) == {}  # nothing migrated yet

    code, out, err = await tzurot("migrate", "--database-url", url)
    assert code == 0, err
    assert out.splitlines() == all_applied()
    assert await revisions(url) == heads()
    before = await catalogue(url)
    assert any(row[:2] == ("memory", "turns") for row in before)  # the tables are there
    assert any(row[:2] == ("vault", "api_keys") for row in before)
    assert any(row[:2] == ("core", "jobs") for row in before)

    # Again, the URL from the environment: nothing to do, and it says every schema is at head.
    code, out, err = await tzurot("migrate", env={"TZUROT_DATABASE_URL": url})
    assert code == 0, err
    assert out.splitlines() == UP_TO_DATE
    assert err == ""
    assert await revisions(url) == heads()
    assert await catalogue(url) == before

    # One schema one migration behind: that one is applied, and named.
    vault = next(m for m in installed_migrations() if m.service == "keyvault")
    downgrade(vault.script_location, url, vault.schema, "-1")
    code, out, err = await tzurot("migrate", "--database-url", url)
    assert code == 0, err
    last = scripts("keyvault")[-1]
    assert out.splitlines() == [
        "gateway: schema core is at head",
        f"keyvault: schema vault is at head: applied 1 migration ({last})",
        "memory: schema memory is at head",
        "Applied 1 migration.",
    ]
    assert await revisions(url) == heads()


async def test_migrate_without_a_url_migrates_the_embedded_postgres(tmp_path: Path) -> None:
    data_dir = tmp_path / ".data"
    code, out, err = await tzurot("migrate", "--data-dir", str(data_dir))
    assert code == 0, err
    assert out.splitlines() == all_applied()
    with local_postgres(data_dir / "pg") as url:
        assert await revisions(url) == heads()
        before = await catalogue(url)
    code, out, err = await tzurot("migrate", "--data-dir", str(data_dir))
    assert code == 0, err
    assert out.splitlines() == UP_TO_DATE
    with local_postgres(data_dir / "pg", delete_on_exit=True) as url:
        assert await catalogue(url) == before
