"""The operator's keyless chat server and the Discord mesh that declares it, as the keyless
e2e tests share them (test_discord_keyless_provider.py, test_discord_keyless_attachments.py,
test_wallet_keyless_provider.py).

The operator's `TZUROT_PROVIDERS` declares a local chat server (`my-llm`: `"keyless": true`);
`HEARTH_SEED` is a personality whose free config names it. A test module imports the
`local_server` fixture and opens its own mesh with `keyless_world`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from tzurot.cli.localdb import create_database
from tzurot.testing.discord_e2e import World, discord_world
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import gateway_pb2 as gw

LOCAL = "my-llm"
"""The operator's chat server, as TZUROT_PROVIDERS names it."""
HEARTH_SEED = b"""
name: Hearth
system_prompt: You are Hearth, a test personality on the operator's own server.
llm: {provider: my-llm, model: local/hearth, free_use: true}
"""
VISION_MODEL = "fake/vision:free"
"""The helper describing images for a model that sees none: free, on OpenRouter."""


@pytest.fixture(scope="module")
async def local_server() -> AsyncIterator[FakeProvider]:
    """The operator's chat server: it takes no key (and would accept any)."""
    async with FakeProvider(require_key=False, any_model=True) as server:
        yield server


@asynccontextmanager
async def keyless_world(
    postgres_url: str,
    workdir: Path,
    server: FakeProvider,
    *,
    inference: Mapping[str, Any] | None = None,
    gateway: Mapping[str, Any] | None = None,
) -> AsyncIterator[World]:
    """The Discord mesh on a new database, `server` declared keyless as LOCAL
    (TZUROT_PROVIDERS); `inference` and `gateway` override those services' settings."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    declared = {"base_url": server.base_url, "keyless": True}
    async with discord_world(
        database, workdir, providers={LOCAL: declared}, inference=inference, gateway=gateway
    ) as world:
        yield world


def operator_inference(system_key: str, **more: Any) -> dict[str, Any]:
    """Inference as the operator runs it beside his keyless server: in a pod (no loopback
    providers, as the manifests' configmap says), his OpenRouter key `system_key` for free
    models on free configs (TZUROT_SYSTEM_KEYS), images described there by VISION_MODEL
    (free: it matches the default free models, "*:free"), attachments fetched from the fake
    Discord's CDN; `more` adds settings."""
    return {
        "loopback_providers": False,
        "system_keys": {"openrouter": system_key},
        "vision_provider": "openrouter",
        "vision_model": VISION_MODEL,
        "attachment_hosts": ["127.0.0.1"],
        **more,
    }


async def import_hearth(world: World) -> None:
    """Hearth (HEARTH_SEED), on the operator's keyless server, into the world's catalog."""
    await world.cli.ImportPersonality(
        gw.ImportPersonalityRequest(format=gw.IMPORT_FORMAT_SEED_YAML, document=HEARTH_SEED)
    )
