"""The database roles the Kubernetes overlays create, on a real Postgres.

The SQL comes out of the rendered manifests (dev: the postgres-init ConfigMap; prod: the
CloudNativePG Cluster's postInitApplicationSQL). Each service's migrations then run as its
own role, and a role can touch no schema but its own: keyvault's role owns only `vault`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.db.upgrade import installed_migrations
from tzurot.testing.k8s import of_kind, render
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

OWNERS = {"gateway": "core", "memory": "memory", "keyvault": "vault"}


def dev_statements() -> list[str]:
    (init,) = [
        c for c in of_kind(render("dev"), "ConfigMap") if c["metadata"]["name"] == "postgres-init"
    ]
    (script,) = init["data"].values()
    sql = script.split("<<'SQL'\n", 1)[1].rsplit("SQL", 1)[0]
    sql = re.sub(r":'(\w+)_pw'", lambda m: f"'{m.group(1)}-dev-password'", sql)
    return [s.strip() for s in sql.split(";") if s.strip()]


def prod_statements() -> list[str]:
    (cluster,) = of_kind(render("prod"), "Cluster")
    statements: list[str] = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    return statements


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


async def run_as_superuser(url: str, statements: list[str], database: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                sql = statement.replace("DATABASE tzurot", f'DATABASE "{database}"')
                if sql.startswith("CREATE ROLE"):
                    # Roles are per server; the other overlay's run may have made them.
                    sql = f"DO $$ BEGIN {sql}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def denied(url: str, sql: str) -> bool:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql))
    except DBAPIError as exc:
        return "permission denied" in str(exc).lower()
    finally:
        await engine.dispose()
    return False


@pytest.mark.parametrize("statements", [dev_statements, prod_statements], ids=["dev", "prod"])
async def test_each_service_migrates_as_its_own_role_and_owns_only_its_schema(
    fresh_database: DatabaseFactory, statements: object
) -> None:
    assert callable(statements)
    url = fresh_database()
    database = urlsplit(url).path.lstrip("/")
    await run_as_superuser(url, statements(), database)

    migrations = {m.service: m for m in installed_migrations()}
    for role, schema in OWNERS.items():
        migration = migrations[role]
        assert migration.schema == schema
        upgrade(migration.script_location, as_role(url, role), schema)

    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            owners: dict[str, str] = dict(
                (
                    await conn.execute(
                        text(
                            "select n.nspname, r.rolname from pg_namespace n"
                            " join pg_roles r on r.oid = n.nspowner"
                            " where r.rolname in ('gateway', 'memory', 'keyvault')"
                        )
                    )
                ).all()
            )
            tables = set(
                (
                    await conn.execute(
                        text(
                            "select schemaname || '.' || tablename || ':' || tableowner"
                            " from pg_tables where tableowner in"
                            " ('gateway', 'memory', 'keyvault')"
                        )
                    )
                ).scalars()
            )
    finally:
        await engine.dispose()
    assert owners == {schema: role for role, schema in OWNERS.items()}
    assert tables
    for entry in tables:
        schema_table, _, owner = entry.partition(":")
        assert schema_table.split(".")[0] == OWNERS[owner], entry

    keyvault = as_role(url, "keyvault")
    assert await denied(keyvault, "select count(*) from core.users")
    assert await denied(keyvault, "select count(*) from memory.turns")
    assert await denied(keyvault, "create table core.stolen (id int)")
    assert await denied(keyvault, "create schema elsewhere")
    assert await denied(keyvault, "create table public.stray (id int)")
    assert await denied(as_role(url, "gateway"), "select count(*) from vault.api_keys")
    assert await denied(as_role(url, "memory"), "select count(*) from vault.api_keys")
