"""`python -m tzurot.keyvault`: serves until SIGTERM; bad config is one clear line, exit 2."""

import asyncio
import base64
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.processes import bound_port
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

pytestmark = pytest.mark.component

GOOD_KEY = bytes(range(32)).hex()
SHORT_KEY = base64.b64encode(bytes(range(31))).decode()
DB_PASSWORD = "hunter2-db-password"
UNREACHABLE_DB = f"postgresql://keyvault:{DB_PASSWORD}@/vault?host=/nonexistent-socket-dir"


def run_keyvault(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", ""), "TZUROT_LOG_FORMAT": "json", **env}
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.keyvault"],
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
    assert expected in err
    for secret in (GOOD_KEY, SHORT_KEY, DB_PASSWORD):
        assert secret not in result.stderr + result.stdout
    return err


def test_missing_master_key(pki: Path) -> None:
    result = run_keyvault(
        {"TZUROT_TLS_DIR": str(pki / "keyvault"), "TZUROT_DATABASE_URL": UNREACHABLE_DB}
    )
    assert_one_line(result, "no master key: set TZUROT_MASTER_KEY or TZUROT_MASTER_KEY_FILE")


def test_bad_master_key(pki: Path) -> None:
    result = run_keyvault(
        {
            "TZUROT_TLS_DIR": str(pki / "keyvault"),
            "TZUROT_DATABASE_URL": UNREACHABLE_DB,
            "TZUROT_MASTER_KEY": SHORT_KEY,
        }
    )
    assert_one_line(result, "master key must be 32 bytes as base64 or hex (got 31 bytes)")


def test_bad_master_key_file(pki: Path, tmp_path: Path) -> None:
    mounted = tmp_path / "master.key"
    mounted.write_text(f"1:{GOOD_KEY}\n2:{SHORT_KEY}\n")
    result = run_keyvault(
        {
            "TZUROT_TLS_DIR": str(pki / "keyvault"),
            "TZUROT_DATABASE_URL": UNREACHABLE_DB,
            "TZUROT_MASTER_KEY_FILE": str(mounted),
        }
    )
    assert_one_line(result, "master key must be 32 bytes as base64 or hex (version 2)")


def test_missing_certificate_dir(tmp_path: Path) -> None:
    result = run_keyvault(
        {
            "TZUROT_TLS_DIR": str(tmp_path / "no-certs-here"),
            "TZUROT_DATABASE_URL": UNREACHABLE_DB,
            "TZUROT_MASTER_KEY": GOOD_KEY,
        }
    )
    assert_one_line(result, str(tmp_path / "no-certs-here"))


def test_unreachable_database(pki: Path) -> None:
    result = run_keyvault(
        {
            "TZUROT_TLS_DIR": str(pki / "keyvault"),
            "TZUROT_DATABASE_URL": UNREACHABLE_DB,
            "TZUROT_MASTER_KEY": GOOD_KEY,
        }
    )
    assert_one_line(result, "cannot reach the database at /nonexistent-socket-dir db=vault")


async def test_serves_until_sigterm(pki: Path, vault_url: str, tmp_path: Path) -> None:
    mounted = tmp_path / "master.key"
    second = bytes(range(1, 33)).hex()
    mounted.write_text(f"1:{GOOD_KEY}\n2:{second}\n")
    log_path = tmp_path / "keyvault.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "TZUROT_LISTEN": "127.0.0.1:0",  # the port it binds: bound_port
        "TZUROT_TLS_DIR": str(pki / "keyvault"),
        "TZUROT_DATABASE_URL": vault_url,
        "TZUROT_MASTER_KEY_FILE": str(mounted),
        "TZUROT_LOG_LEVEL": "DEBUG",
        "TZUROT_LOG_FORMAT": "json",
    }
    planted = "plantedViaMainZk4Qw8Er2Ty6"
    with log_path.open("w") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tzurot.keyvault", env=env, stdout=log, stderr=log
        )
        try:
            port = await bound_port(log_path, "keyvault", process)
            user = str(uuid.uuid4())
            gateway = secure_channel(
                f"127.0.0.1:{port}",
                load_tls(pki / "gateway"),
                server_identity="keyvault",
                default_timeout=60.0,
            )
            inference = secure_channel(
                f"127.0.0.1:{port}",
                load_tls(pki / "inference"),
                server_identity="keyvault",
                default_timeout=60.0,
            )
            try:
                record = await kv_grpc.KeyVaultServiceStub(gateway).PutKey(
                    kv.PutKeyRequest(user_id=user, provider="openrouter", api_key=planted),
                    wait_for_ready=True,
                )
                assert record.record.master_key_version == 2
                reply = await kv_grpc.KeyVaultServiceStub(inference).Decrypt(
                    kv.DecryptRequest(user_id=user, provider="openrouter")
                )
                assert reply.api_key == planted
            finally:
                await gateway.close()
                await inference.close()
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 60) == 0, log_path.read_text()[-3000:]
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    logs = log_path.read_text()
    assert "server.stopped" in logs
    for secret in (planted, GOOD_KEY, second):
        assert secret not in logs
