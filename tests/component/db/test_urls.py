"""async_url and describe_target turn libpq URLs into what we need."""

import traceback

import pytest

from tzurot.db.engine import async_url, describe_target
from tzurot.db.errors import DatabaseUrlError

pytestmark = pytest.mark.component


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://u:pw@db.example:5433/core",
            "postgresql+asyncpg://u:pw@db.example:5433/core",
        ),
        ("postgres://u:pw@db.example/core", "postgresql+asyncpg://u:pw@db.example/core"),
        ("postgresql+psycopg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql://u:p%40ss@h/d", "postgresql+asyncpg://u:p%40ss@h/d"),
        ("postgresql://u@h/d?sslmode=require", "postgresql+asyncpg://u@h/d?ssl=require"),
    ],
)
def test_async_url_selects_asyncpg(given: str, expected: str) -> None:
    assert async_url(given) == expected


def test_async_url_keeps_the_unix_socket_directory() -> None:
    converted = async_url("postgresql://postgres:@/postgres?host=/run/tz/pg")

    assert converted.startswith("postgresql+asyncpg://postgres:@/postgres?host=")
    assert describe_target(converted) == "/run/tz/pg db=postgres"


def test_async_url_refuses_other_databases() -> None:
    with pytest.raises(ValueError, match="not a Postgres URL"):
        async_url("mysql://u:pw@h/d")


def test_describe_target_names_host_port_and_database() -> None:
    assert describe_target("postgresql://tz:hunter2@db.example:6543/core") == (
        "db.example:6543 db=core"
    )


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://tz:Planted-pw/core",  # no @: SQLAlchemy reads the password as the port
        "postgresql://tz:Planted-pw@db.example:70000/core",
        "postgresql://tz:pa@Planted-pw@db.example/core",  # the host would be "Planted-pw@…"
        "postgresql:///tz:Planted-pw@db.example",  # the database name would hold it all
        "no scheme tz:Planted-pw@db.example",
    ],
)
def test_a_malformed_url_is_refused_without_quoting_it(url: str) -> None:
    with pytest.raises(DatabaseUrlError) as caught:
        async_url(url)
    assert "Planted-pw" not in "".join(traceback.format_exception(caught.value))  # as logged


def test_an_at_sign_written_as_percent_40_is_fine() -> None:
    assert describe_target("postgresql://tz:p%40ss@db.example/my%40db") == "db.example db=my@db"
    assert async_url("postgresql://tz:p%40ss@db.example/core").endswith("@db.example/core")
