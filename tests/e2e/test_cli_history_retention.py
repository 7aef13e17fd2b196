"""History retention through the consolidation entry point the memory-consolidation CronJob
runs (`python -m tzurot.memory.consolidate`, deploy/k8s/base/jobs/memory-consolidation.yaml),
in a process of its own, with the CronJob's environment (JSON logs, memory's certificate),
against a running memory service on a database holding turns of different ages.

- Without `TZUROT_HISTORY_RETENTION_DAYS` (or 0, the CronJob's value) every turn is kept.
- With 30, the turns older than 30 days are deleted, those newer are kept, and the pass
  reports how many it deleted; with 10, the next pass deletes the 20-day-old ones too.
- A negative value is refused at start, in one line, and nothing is deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from tzurot.cli.migrate import migrate_all
from tzurot.db.engine import create_engine
from tzurot.memory.app import MemoryApp, start_memory
from tzurot.memory.config import MemorySettings
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki
from tzurot.testing.channels import channels_to
from tzurot.testing.postgres import DatabaseFactory
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.e2e

AGES = {"job-60d": 60, "job-40d": 40, "job-20d": 20, "job-2d": 2, "job-now": 0}
"""Exchanges (two turns each) and how many days ago they happened."""


@dataclass
class Memory:
    app: MemoryApp
    pki: Path
    database_url: str

    async def consolidate(self, **env: str) -> tuple[int, list[dict[str, Any]], str]:
        """One CronJob pass: exit code, its JSON log lines, its standard error."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,  # the CronJob's command: python -m tzurot.memory.consolidate
            "-m",
            "tzurot.memory.consolidate",
            env={
                **clean,
                "TZUROT_LOG_FORMAT": "json",
                "TZUROT_TLS_DIR": str(self.pki / "memory"),
                "TZUROT_MEMORY_ADDR": f"127.0.0.1:{self.app.port}",
                **env,
            },
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        logs = [
            json.loads(line) for line in (out + err).decode().splitlines() if line.startswith("{")
        ]
        return process.returncode, logs, err.decode()

    async def jobs(self) -> set[str]:
        """The exchanges whose two turns are still stored."""
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    sa.text("select job_id, count(*) from memory.turns group by job_id")
                )
                counted = {job: count for job, count in rows}
        finally:
            await engine.dispose()
        assert set(counted.values()) <= {2}
        return set(counted)


@pytest.fixture
async def memory(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Memory]:
    """memory on a fresh database, with AGES' exchanges stored (by gateway) and aged."""
    url = fresh_database()
    migrate_all(url, {"memory"})
    pki = tmp_path / "pki"
    generate_dev_pki(pki, SERVICE_IDENTITIES)
    app = await start_memory(
        MemorySettings(listen="127.0.0.1:0", tls_dir=pki / "memory", database_url=SecretStr(url))
    )
    try:
        async with channels_to("memory", pki) as open_channel:
            gateway = mem_grpc.MemoryServiceStub(open_channel(app.port, "gateway"))
            for job in AGES:
                await gateway.StoreExchange(exchange(job))
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                for job, days in AGES.items():
                    await conn.execute(
                        sa.text(
                            "update memory.turns"
                            " set created_at = now() - make_interval(days => :days)"
                            " where job_id = :job"
                        ),
                        {"days": days, "job": job},
                    )
        finally:
            await engine.dispose()
        yield Memory(app, pki, url)
    finally:
        await app.stop()


def exchange(job: str) -> mem.StoreExchangeRequest:
    return mem.StoreExchangeRequest(
        job_id=job,
        channel_id="chan-r",
        personality_id="lilith",
        user_id="u-1",
        turns=[
            common.Turn(role=common.ROLE_USER, author_name="Al", content=f"q {job}"),
            common.Turn(role=common.ROLE_ASSISTANT, author_name="Li", content=f"a {job}"),
        ],
    )


def done(logs: list[dict[str, Any]]) -> dict[str, Any]:
    [line] = [entry for entry in logs if entry.get("event") == "consolidate.done"]
    return line


async def test_the_consolidation_pass_prunes_history_older_than_the_retention(
    memory: Memory,
) -> None:
    every = set(AGES)
    assert await memory.jobs() == every

    # Unset, and the CronJob's own "0": history is kept forever.
    for env in ({}, {"TZUROT_HISTORY_RETENTION_DAYS": "0"}):
        code, logs, err = await memory.consolidate(**env)
        assert code == 0, err
        assert done(logs)["pruned_turns"] == 0
        assert await memory.jobs() == every

    code, logs, err = await memory.consolidate(TZUROT_HISTORY_RETENTION_DAYS="30")
    assert code == 0, err
    assert done(logs)["pruned_turns"] == 4  # two exchanges of two turns
    assert await memory.jobs() == {"job-20d", "job-2d", "job-now"}

    code, logs, err = await memory.consolidate(TZUROT_HISTORY_RETENTION_DAYS="10")
    assert code == 0, err
    assert done(logs)["pruned_turns"] == 2
    assert await memory.jobs() == {"job-2d", "job-now"}

    code, logs, err = await memory.consolidate(TZUROT_HISTORY_RETENTION_DAYS="10")
    assert code == 0, err
    assert done(logs)["pruned_turns"] == 0  # nothing older left
    assert await memory.jobs() == {"job-2d", "job-now"}


async def test_a_negative_retention_is_refused_at_start(memory: Memory) -> None:
    code, logs, err = await memory.consolidate(TZUROT_HISTORY_RETENTION_DAYS="-5")
    assert code == 2
    assert err.startswith("tzurot-memory-consolidate: cannot start: ")
    assert "TZUROT_HISTORY_RETENTION_DAYS" in err
    assert err.count("\n") == 1
    assert not any(entry.get("event") == "consolidate.done" for entry in logs)
    assert await memory.jobs() == set(AGES)
