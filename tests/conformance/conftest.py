"""Conformance fixtures: the service under test, external (env) or the Python reference.

Each test module names its service in a module constant SERVICE. With
TZUROT_CONFORMANCE_SERVICE set, only that service's modules are collected.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tzurot.cli.localdb import create_database
from tzurot.testing.conformance.target import ENV_SERVICE, Target, external_target, reference_target


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = os.environ.get(ENV_SERVICE)
    if not wanted:
        return
    keep = [
        item for item in items if getattr(getattr(item, "module", None), "SERVICE", None) == wanted
    ]
    config.hook.pytest_deselected(items=[item for item in items if item not in keep])
    items[:] = keep


@pytest.fixture(scope="module")
async def target(
    request: pytest.FixtureRequest, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Target]:
    service: str = request.module.SERVICE
    external = external_target(service)
    if external is not None:
        try:
            yield external
        finally:
            await external.close()
        return
    database = create_database(postgres_url, f"conf_{uuid.uuid4().hex[:20]}")
    workdir: Path = tmp_path_factory.mktemp(f"conformance-{service}")
    async with reference_target(service, database, workdir) as reference:
        yield reference
