"""`tzurot migrate --database-url` pointed at a database it cannot use: one line on standard
error, no traceback, 2 for a malformed URL, 3 for a server that does not answer, and never the
password, wherever a malformed URL put it (SQLAlchemy's own errors quote it as a "port").

The URLs reach no database; the refusals of a real one are in tests/component/db."""

from __future__ import annotations

import os

import pytest

from tests.unit.cli.test_cli_failures import one_line, tzurot
from tzurot.testing.processes import free_port

PASSWORD = "Planted-db-pw-4e9c"


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    return {**clean, **extra}


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"not a url {PASSWORD}", "the database URL cannot be parsed; write it as postgresql://"),
        (f"postgresql://tz:{PASSWORD}/tzurot", "port is not a number (is the @ before the host"),
        (f"postgresql://tz:{PASSWORD}@db.example:99999/tzurot", "port is not between 1 and 65535"),
        (f"mysql://tz:{PASSWORD}@db.example/tzurot", "not a Postgres URL (scheme 'mysql')"),
        (f"postgresql://tz:pa@{PASSWORD}@db.example/tzurot", "the database URL has an @ out of"),
        (f"postgresql:///tz:{PASSWORD}@db.example", "the database URL has an @ out of place"),
        (
            f"postgresql://tz:{PASSWORD}@127.0.0.1:1/tzurot?sslmode=sometimes",
            "the database URL is not valid: `sslmode` parameter must be one of",
        ),
    ],
    ids=["garbage", "no-at", "port-range", "mysql", "two-ats", "at-in-path", "sslmode"],
)
def test_a_malformed_url_is_one_line_exit_2_without_the_password(url: str, said: str) -> None:
    result = tzurot("migrate", "--database-url", url, env=_env())
    assert said in one_line(result, 2)
    assert PASSWORD not in result.stdout + result.stderr
    assert result.stdout == ""


def test_the_url_from_the_environment_is_checked_the_same() -> None:
    url = f"postgresql://tz:{PASSWORD}/tzurot"
    result = tzurot("migrate", env=_env(TZUROT_DATABASE_URL=url))
    assert "port is not a number" in one_line(result, 2)
    assert PASSWORD not in result.stdout + result.stderr


def test_nothing_listening_is_exit_3_naming_where() -> None:
    port = free_port()
    url = f"postgresql://tz:{PASSWORD}@127.0.0.1:{port}/tzurot"
    result = tzurot("migrate", "--database-url", url, env=_env())
    assert one_line(result, 3) == (
        f"tzurot: cannot reach the database at 127.0.0.1:{port} db=tzurot: connection refused"
    )
    assert PASSWORD not in result.stdout + result.stderr


def test_no_server_socket_is_exit_3() -> None:
    url = f"postgresql://tz:{PASSWORD}@/tzurot?host=/nonexistent-socket-dir"
    result = tzurot("migrate", "--database-url", url, env=_env())
    assert one_line(result, 3) == (
        "tzurot: cannot reach the database at /nonexistent-socket-dir db=tzurot: "
        "no server socket there (is Postgres running?)"
    )
    assert PASSWORD not in result.stdout + result.stderr


def test_an_unknown_host_is_exit_3() -> None:
    url = f"postgresql://tz:{PASSWORD}@no-such-host.invalid/tzurot"
    result = tzurot("migrate", "--database-url", url, env=_env())
    assert "cannot reach the database at no-such-host.invalid db=tzurot: " in one_line(result, 3)
    assert PASSWORD not in result.stdout + result.stderr
