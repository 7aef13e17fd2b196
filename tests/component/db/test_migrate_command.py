"""`tzurot migrate --database-url` against a real Postgres that refuses: one line, exit 1, and
never the password; and the same command migrating, with the password still unseen.

The run's embedded server trusts local connections, so one role is made to give a password
(scram-sha-256) by a line of its own at the top of pg_hba.conf; no other role is affected.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

from tzurot.db.engine import check_database, create_engine, dispose
from tzurot.db.errors import DatabaseRefused
from tzurot.db.heads import libpq_url
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

PASSWORD = "Planted-db-pw-7b1d"
ROLE = "tz_migrate_pw"


def with_user(url: str, user: str, password: str, database: str | None = None) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    path = f"/{database}" if database else parts.path
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}", path=path))


def migrate(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    result = subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.cli", "migrate", "--database-url", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert PASSWORD not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    err = result.stderr.strip()
    assert "\n" not in err, err
    return err


@pytest.fixture(scope="module")
async def password_role(postgres_url: str) -> AsyncIterator[str]:
    """A role that must give PASSWORD (whose database is the superuser's `postgres`)."""
    superuser = await asyncpg.connect(libpq_url(postgres_url))
    hba = Path(await superuser.fetchval("show hba_file"))
    rules = await asyncio.to_thread(hba.read_text)
    try:
        await superuser.execute(f"drop role if exists {ROLE}")
        await superuser.execute(f"create role {ROLE} login password '{PASSWORD}'")
        await asyncio.to_thread(hba.write_text, f"local all {ROLE} scram-sha-256\n{rules}")
        await superuser.execute("select pg_reload_conf()")
        await _until_refused(with_user(postgres_url, ROLE, "not-it"))
        yield with_user(postgres_url, ROLE, PASSWORD)
    finally:
        await asyncio.to_thread(hba.write_text, rules)
        await superuser.execute("select pg_reload_conf()")
        await superuser.close()


async def _until_refused(url: str) -> None:
    """pg_reload_conf() signals the server: its new rules apply a moment later."""
    for _ in range(100):
        try:
            connection = await asyncpg.connect(libpq_url(url))
        except asyncpg.InvalidPasswordError:
            return
        await connection.close()
        await asyncio.sleep(0.05)
    raise AssertionError("pg_hba.conf's password rule was not applied")


def test_a_wrong_password_is_refused_exit_1(password_role: str) -> None:
    url = password_role.replace(PASSWORD, "Wrong-" + PASSWORD[::-1])
    err = one_line(migrate(url), 1)
    assert err.startswith("tzurot: the database at ")
    assert err.endswith(
        f' db=postgres refused the connection: password authentication failed for user "{ROLE}"'
    )
    assert PASSWORD[::-1] not in err  # the wrong password is not shown either


def test_a_database_that_is_not_there_is_refused_exit_1(postgres_url: str) -> None:
    url = with_user(postgres_url, "postgres", PASSWORD, database="no_such_db")
    err = one_line(migrate(url), 1)
    assert err.endswith(
        ' db=no_such_db refused the connection: database "no_such_db" does not exist'
    )


def test_a_role_without_the_privilege_is_refused_the_migrations(
    password_role: str, fresh_database: DatabaseFactory
) -> None:
    database = urlsplit(fresh_database()).path.lstrip("/")
    err = one_line(migrate(password_role.replace("/postgres?", f"/{database}?")), 1)
    assert f"db={database} refused the migrations: permission denied for database" in err


def test_it_migrates_and_shows_no_password(fresh_database: DatabaseFactory) -> None:
    """The embedded server trusts local connections: the password is sent and not needed."""
    result = migrate(with_user(fresh_database(), "postgres", PASSWORD))
    assert result.returncode == 0, result.stderr
    for line in ("gateway: schema core", "keyvault: schema vault", "memory: schema memory"):
        assert f"{line} is at head" in result.stdout


async def test_a_service_started_with_a_wrong_password_says_it_was_refused(
    password_role: str,
) -> None:
    """A service's start-up check (check_database) names a refusal as one, not as a database
    it "cannot reach"."""
    wrong = "Wrong-" + PASSWORD[::-1]
    engine = create_engine(password_role.replace(PASSWORD, wrong))
    try:
        with pytest.raises(DatabaseRefused) as refused:
            await check_database(engine, "core")
    finally:
        await dispose(engine)
    message = str(refused.value)
    assert "refused the connection: password authentication failed" in message
    assert wrong not in message
