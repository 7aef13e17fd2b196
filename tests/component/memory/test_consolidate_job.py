"""`python -m tzurot.memory.consolidate`, run as the memory-consolidation CronJob runs it.

The job presents memory's own certificate to a running memory server. Until the long-term
memory pass lands, memory answers UNIMPLEMENTED; what this pins down is the wiring: the job
reaches Consolidate as `memory` (not refused), reports in one line, and another identity is
refused.
"""

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tzurot.memory.app import MemoryApp, start_memory
from tzurot.memory.config import MemorySettings

pytestmark = pytest.mark.component


@pytest.fixture
async def app(memory_url: str, pki: Path) -> AsyncIterator[MemoryApp]:
    settings = MemorySettings(
        listen="127.0.0.1:0", tls_dir=pki / "memory", database_url=SecretStr(memory_url)
    )
    running = await start_memory(settings)
    try:
        yield running
    finally:
        await running.stop()


async def run_job(pki: Path, identity: str, port: int) -> tuple[int, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TZUROT_TLS_DIR": str(pki / identity),
        "TZUROT_MEMORY_ADDR": f"127.0.0.1:{port}",
        "TZUROT_LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tzurot.memory.consolidate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, (out + err).decode()


async def test_the_job_reaches_consolidate_as_memory(app: MemoryApp, pki: Path) -> None:
    code, output = await run_job(pki, "memory", app.port)
    if code == 0:
        assert "consolidate.done" in output
    else:
        assert code == 2, output
        assert "Consolidate failed: [unimplemented]" in output
    assert "permission_denied" not in output


async def test_other_identities_are_refused(app: MemoryApp, pki: Path) -> None:
    code, output = await run_job(pki, "bot", app.port)
    assert code == 2
    last = output.strip().splitlines()[-1]
    assert last.startswith("tzurot-memory-consolidate: cannot start: Consolidate failed:")
    assert "[permission_denied]" in last
