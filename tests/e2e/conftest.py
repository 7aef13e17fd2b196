"""The mesh on loopback: four real services with mTLS, real Postgres, a fake LLM provider."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tzurot.testing.e2e import Harness, echo_mesh
from tzurot.testing.postgres import DatabaseFactory


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with echo_mesh(fresh_database(), tmp_path) as h:
        yield h
