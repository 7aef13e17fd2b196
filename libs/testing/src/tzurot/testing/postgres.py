"""pytest plugin: one embedded Postgres per test run, and a fresh database per call.

Register it with `pytest_plugins = ["tzurot.testing.postgres"]` in the root conftest.
The server lives in a short private dir under /tmp (the unix socket path must stay
short), is started on first use only, and is stopped and deleted at the end of the run.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tzurot.cli.localdb import create_database, local_postgres

DatabaseFactory = Callable[[], str]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the run's embedded server (database `postgres`); prefer `fresh_database`."""
    # mkdtemp makes a private, unpredictable dir; /tmp keeps the socket path short.
    root = Path(tempfile.mkdtemp(prefix="tzpg-", dir="/tmp"))
    try:
        with local_postgres(root / "pg", delete_on_exit=True) as url:
            yield url
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fresh_database(postgres_url: str) -> DatabaseFactory:
    """Call it to get the URL of a new, empty database (extensions installed)."""

    def make() -> str:
        return create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")

    return make
