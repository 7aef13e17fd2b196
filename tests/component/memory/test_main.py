"""`python -m tzurot.memory`: serves until SIGTERM; bad config is one clear line, exit 2."""

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.postgres import DatabaseFactory
from tzurot.testing.processes import bound_port
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.component

DB_PASSWORD = "hunter2-db-password"
UNREACHABLE_DB = f"postgresql://memory:{DB_PASSWORD}@/memory?host=/nonexistent-socket-dir"


def run_memory(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", ""), "TZUROT_LOG_FORMAT": "json", **env}
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.memory"],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], expected: str) -> str:
    err = result.stderr.strip()
    assert result.returncode == 2, result.stderr
    assert "\n" not in err, err
    assert "Traceback" not in err
    assert err.startswith("tzurot-memory: cannot start: "), err
    assert expected in err
    assert DB_PASSWORD not in result.stderr + result.stdout
    return err


def test_nothing_configured() -> None:
    result = run_memory({})
    assert_one_line(result, "TZUROT_TLS_DIR, TZUROT_DATABASE_URL are not set")


def test_missing_database_url(pki: Path) -> None:
    result = run_memory({"TZUROT_TLS_DIR": str(pki / "memory")})
    assert_one_line(result, "TZUROT_DATABASE_URL is not set")


def test_missing_certificate_dir(tmp_path: Path) -> None:
    result = run_memory(
        {"TZUROT_TLS_DIR": str(tmp_path / "no-certs-here"), "TZUROT_DATABASE_URL": UNREACHABLE_DB}
    )
    assert_one_line(result, str(tmp_path / "no-certs-here"))


def test_unreachable_database(pki: Path) -> None:
    result = run_memory(
        {"TZUROT_TLS_DIR": str(pki / "memory"), "TZUROT_DATABASE_URL": UNREACHABLE_DB}
    )
    assert_one_line(result, "cannot reach the database at /nonexistent-socket-dir db=memory")


def test_database_not_migrated(pki: Path, fresh_database: DatabaseFactory) -> None:
    url = fresh_database()
    result = run_memory({"TZUROT_TLS_DIR": str(pki / "memory"), "TZUROT_DATABASE_URL": url})
    assert_one_line(result, "has no schema 'memory': run `tzurot migrate` first")


async def test_serves_until_sigterm(pki: Path, memory_url: str, tmp_path: Path) -> None:
    log_path = tmp_path / "memory.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TZUROT_LISTEN": "127.0.0.1:0",  # the port it binds: bound_port
        "TZUROT_TLS_DIR": str(pki / "memory"),
        "TZUROT_DATABASE_URL": memory_url,
        "TZUROT_LOG_FORMAT": "json",
        # The local model takes seconds to load; tests of MiniLM are in test_longterm.py.
        "TZUROT_EMBEDDER": "openai",
        "TZUROT_EMBEDDING_BASE_URL": "http://127.0.0.1:9/v1",
    }
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tzurot.memory", env=env, stdout=log, stderr=log
        )
        try:
            port = await bound_port(log_path, "memory", process)
            channel = secure_channel(
                f"127.0.0.1:{port}",
                load_tls(pki / "gateway"),
                server_identity="memory",
                default_timeout=60.0,
            )
            try:
                stub = mem_grpc.MemoryServiceStub(channel)
                stored = await stub.StoreExchange(
                    mem.StoreExchangeRequest(
                        job_id="job-main",
                        channel_id="c",
                        personality_id="p",
                        user_id="u",
                        turns=[common.Turn(role=common.ROLE_USER, content="hello")],
                    ),
                    wait_for_ready=True,
                )
                assert stored.created is True
                history = await stub.GetHistory(
                    mem.GetHistoryRequest(channel_id="c", personality_id="p")
                )
                assert [t.content for t in history.turns] == ["hello"]
            finally:
                await channel.close()
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60) == 0, log_path.read_text()[-3000:]
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert "server.stopped" in log_path.read_text()
