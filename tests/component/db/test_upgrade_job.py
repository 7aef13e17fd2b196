"""`python -m tzurot.db.upgrade`: the migration Job's command, with the URL from a Secret file."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from tzurot.db.engine import create_engine
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component


def run_upgrade(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.db.upgrade"],
        env={"PATH": os.environ.get("PATH", ""), "TZUROT_LOG_FORMAT": "json", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def test_upgrades_every_installed_schema(
    fresh_database: DatabaseFactory, tmp_path: Path
) -> None:
    url = fresh_database()
    (tmp_path / "TZUROT_DATABASE_URL").write_text(url)

    result = run_upgrade({"TZUROT_SECRETS_DIR": str(tmp_path)})

    assert result.returncode == 0, result.stderr
    # The dev environment has every service installed; an image has one.
    for line in ("gateway: schema core", "keyvault: schema vault", "memory: schema memory"):
        assert line in result.stderr
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            schemas = set((await conn.execute(text("select nspname from pg_namespace"))).scalars())
    finally:
        await engine.dispose()
    assert {"core", "memory", "vault"} <= schemas
    assert url not in result.stdout + result.stderr


def test_without_a_database_url_it_fails_in_one_line() -> None:
    result = run_upgrade({})
    assert result.returncode == 2
    assert result.stderr.strip() == "tzurot-migrate: cannot start: TZUROT_DATABASE_URL is not set"


def test_a_malformed_url_is_one_line_without_the_password() -> None:
    """SQLAlchemy reads a password without its `@` as the port, and its error quotes it."""
    result = run_upgrade({"TZUROT_DATABASE_URL": "postgresql://tz:Planted-pw-81c2/tzurot"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tzurot-migrate: cannot start: the database URL's port is not a number (is the @ before "
        "the host missing?); write it as postgresql://user:password@host:port/database"
    )
    assert "Planted-pw-81c2" not in result.stdout + result.stderr


def test_a_database_not_there_is_one_line() -> None:
    url = "postgresql://tz:Planted-pw-81c2@/tzurot?host=/nonexistent-socket-dir"
    result = run_upgrade({"TZUROT_DATABASE_URL": url})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tzurot-migrate: cannot start: cannot reach the database at /nonexistent-socket-dir "
        "db=tzurot: no server socket there (is Postgres running?)"
    )
