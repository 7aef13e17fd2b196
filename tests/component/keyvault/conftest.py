"""Keyvault component fixtures: a migrated `vault` schema, its engine, master key rings."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.keyvault.crypto import MasterKey, MasterKeyRing
from tzurot.keyvault.migrations import SCRIPT_LOCATION
from tzurot.keyvault.tables import SCHEMA
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki
from tzurot.testing.postgres import DatabaseFactory

KEY_V1 = bytes(range(32))
KEY_V2 = bytes(range(200, 232))


@pytest.fixture
def vault_url(fresh_database: DatabaseFactory) -> str:
    """A new database with schema `vault` migrated to head."""
    url = fresh_database()
    upgrade(SCRIPT_LOCATION, url, SCHEMA)
    return url


@pytest.fixture
async def engine(vault_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(vault_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def ring_v1() -> MasterKeyRing:
    return MasterKeyRing([MasterKey(1, KEY_V1)])


@pytest.fixture
def ring_v2() -> MasterKeyRing:
    return MasterKeyRing([MasterKey(1, KEY_V1), MasterKey(2, KEY_V2)])


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A dev CA and a certificate folder for every service identity."""
    generate_dev_pki(tmp_path / "pki", SERVICE_IDENTITIES)
    return tmp_path / "pki"
