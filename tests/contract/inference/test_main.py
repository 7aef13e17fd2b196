"""`python -m tzurot.inference`: serves until SIGTERM; bad config is one clear line, exit 2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.fake_provider import FakeProvider
from tzurot.testing.processes import bound_port
from tzurot.v1 import inference_pb2 as inf
from tzurot.v1 import inference_pb2_grpc as inf_grpc

pytestmark = pytest.mark.contract

SYSTEM_KEY = "plantedSYSTEMn3Bv8Kl1Pz6"
USER_KEY = "plantedUSERviaMainZk4Qw8Er"


def run_inference(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", ""), "TZUROT_LOG_FORMAT": "json", **env}
    return subprocess.run(  # our own interpreter and module, no shell
        [sys.executable, "-m", "tzurot.inference"],
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
    assert err.startswith("tzurot-inference: cannot start: ")
    assert expected in err
    assert SYSTEM_KEY not in result.stderr + result.stdout
    return err


def test_missing_tls_dir_setting() -> None:
    assert_one_line(run_inference({}), "TZUROT_TLS_DIR is not set")


def test_missing_certificate_dir(tmp_path: Path) -> None:
    result = run_inference({"TZUROT_TLS_DIR": str(tmp_path / "no-certs-here")})
    assert_one_line(result, str(tmp_path / "no-certs-here"))


def test_system_keys_not_json(pki: Path) -> None:
    result = run_inference(
        {
            "TZUROT_TLS_DIR": str(pki / "inference"),
            "TZUROT_SYSTEM_KEYS": f'{{"openrouter": {SYSTEM_KEY}',
        }
    )
    assert_one_line(result, "TZUROT_SYSTEM_KEYS is not valid JSON")


def test_bad_provider_url(pki: Path) -> None:
    result = run_inference(
        {
            "TZUROT_TLS_DIR": str(pki / "inference"),
            "TZUROT_PROVIDERS": json.dumps({"local": "ftp://example.invalid"}),
        }
    )
    assert_one_line(result, "TZUROT_PROVIDERS: base URL of 'local' must be an http(s) URL")


async def test_serves_until_sigterm(pki: Path, tmp_path: Path) -> None:
    log_path = tmp_path / "inference.log"
    async with FakeProvider(valid_keys={USER_KEY}) as fake:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "TZUROT_LISTEN": "127.0.0.1:0",  # the port it binds: bound_port
            "TZUROT_TLS_DIR": str(pki / "inference"),
            "TZUROT_PROVIDERS": json.dumps({"fakeai": fake.base_url}),
            "TZUROT_SYSTEM_KEYS": json.dumps({"fakeai": SYSTEM_KEY}),
            "TZUROT_LOG_LEVEL": "DEBUG",
            "TZUROT_LOG_FORMAT": "json",
        }
        with log_path.open("w") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tzurot.inference", env=env, stdout=log, stderr=log
            )
            try:
                port = await bound_port(log_path, "inference", process)
                gateway = secure_channel(
                    f"127.0.0.1:{port}",
                    load_tls(pki / "gateway"),
                    server_identity="inference",
                    default_timeout=60.0,
                )
                try:
                    reply = await inf_grpc.InferenceServiceStub(gateway).ValidateKey(
                        inf.ValidateKeyRequest(provider="fakeai", api_key=USER_KEY),
                        wait_for_ready=True,
                    )
                    assert reply.model_count == len(fake.models)
                finally:
                    await gateway.close()
                process.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(process.wait(), 60) == 0, log_path.read_text()[-3000:]
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    logs = log_path.read_text()
    assert "server.stopped" in logs
    for secret in (USER_KEY, SYSTEM_KEY):
        assert secret not in logs
