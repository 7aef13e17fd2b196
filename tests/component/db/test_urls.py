"""async_url, redacted_url and describe_target turn libpq URLs into what we need."""

import pytest

from tzurot.db.engine import async_url, describe_target, redacted_url

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


def test_redacted_url_hides_only_the_password() -> None:
    shown = redacted_url("postgresql://tz:hunter2@db.example:5432/core?host=/run/pg")

    assert "hunter2" not in shown
    assert shown == "postgresql://tz:***@db.example:5432/core?host=/run/pg"


def test_describe_target_names_host_port_and_database() -> None:
    assert describe_target("postgresql://tz:hunter2@db.example:6543/core") == (
        "db.example:6543 db=core"
    )
