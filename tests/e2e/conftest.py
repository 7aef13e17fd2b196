"""The mesh on loopback: four real services with mTLS, real Postgres, a fake LLM provider."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tzurot.testing.discord_e2e import World, discord_world
from tzurot.testing.e2e import Harness, echo_mesh
from tzurot.testing.postgres import DatabaseFactory


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with echo_mesh(fresh_database(), tmp_path) as h:
        yield h


@pytest.fixture
async def world(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[World]:
    async with discord_world(fresh_database(), tmp_path) as w:
        yield w
