"""The mesh the fact-extraction tests share (test_facts.py, test_fact_extraction_cut_off.py):
Echo, with gateway's fact worker polling every half second and the fake provider answering as
`reply` says (facts for an extraction's request); and the usage_log rows the tests read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.gateway import tables as t
from tzurot.testing.e2e import USER_KEY, Harness, echo_mesh
from tzurot.testing.fake_provider import FakeProvider, ReplyFn

FACTS_GATEWAY = {"facts_enabled": True, "facts_poll_seconds": 0.5}


@asynccontextmanager
async def fact_mesh(database_url: str, workdir: Path, reply: ReplyFn) -> AsyncIterator[Harness]:
    """The mesh with fact extraction on, its provider accepting Alice's key (USER_KEY)."""
    async with (
        FakeProvider(valid_keys={USER_KEY}, reply=reply) as provider,
        echo_mesh(database_url, workdir, provider=provider, gateway=FACTS_GATEWAY) as harness,
    ):
        yield harness


async def usage_rows(harness: Harness, request_type: str) -> list[Any]:
    """The usage_log rows of `request_type` ("fact_extraction"), as stored."""
    engine = create_engine(harness.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(t.usage_log).where(t.usage_log.c.request_type == request_type)
            )
            return list(rows)
    finally:
        await engine.dispose()
