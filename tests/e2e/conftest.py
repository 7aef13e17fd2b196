"""The mesh on loopback: four real services with mTLS, real Postgres, a fake LLM provider."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import VoiceWorld, World, discord_world, voice_world
from tzurot.testing.e2e import Harness, echo_mesh
from tzurot.testing.postgres import DatabaseFactory


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    async with echo_mesh(fresh_database(), tmp_path) as h:
        yield h


@pytest.fixture(scope="module")
async def discord_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """One mesh and fake Discord per test module (starting them is most of a test's time)."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(database, tmp_path_factory.mktemp("discord")) as w:
        yield w


@pytest.fixture
def world(discord_mesh: World) -> World:
    """A fresh channel and users in the shared server."""
    return discord_mesh.scene()


@pytest.fixture(scope="module")
async def voice_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[VoiceWorld]:
    """Like `discord_mesh`, with a fake ElevenLabs and the database's URL at hand."""
    async with voice_world(postgres_url, tmp_path_factory.mktemp("voice")) as world:
        yield world


@pytest.fixture
def voice_scene(voice_mesh: VoiceWorld) -> VoiceWorld:
    """A fresh channel and users in `voice_mesh`'s server."""
    voice_mesh.world = voice_mesh.world.scene()
    return voice_mesh
