"""Memory component fixtures: a migrated `memory` schema, its engine, the dev PKI."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.tables import SCHEMA
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki
from tzurot.testing.postgres import DatabaseFactory


@pytest.fixture
def memory_url(fresh_database: DatabaseFactory) -> str:
    """A new database with schema `memory` migrated to head."""
    url = fresh_database()
    upgrade(SCRIPT_LOCATION, url, SCHEMA)
    return url


@pytest.fixture
async def engine(memory_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(memory_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A dev CA and a certificate folder for every service identity."""
    generate_dev_pki(tmp_path / "pki", SERVICE_IDENTITIES)
    return tmp_path / "pki"
