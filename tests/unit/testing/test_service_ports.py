"""A service a test starts as a process listens on port 0 and says the port it bound
(tzurot.testing.processes): no port found free beforehand, which something else may take
before the service binds it; restarted, it is found at the same address."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tzurot.runtime.tls import generate_dev_pki
from tzurot.testing.processes import ServiceProcess, bound_port, wait_serving


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    certs = tmp_path_factory.mktemp("pki")
    generate_dev_pki(certs, ["inference", "cli"])
    return certs


def inference_env(pki: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "TZUROT_TLS_DIR": str(pki / "inference"),
        "TZUROT_LOG_FORMAT": "json",
    }


async def test_the_port_a_service_bound_is_read_from_what_it_logged(
    pki: Path, tmp_path: Path
) -> None:
    log = tmp_path / "inference.log"
    earlier = '{"service": "inference", "port": 1, "event": "server.created"}\n'
    log.write_text(earlier)  # an earlier start's, in the same log
    env = {**inference_env(pki), "TZUROT_LISTEN": "127.0.0.1:0"}
    with log.open("a") as out:
        process = await asyncio.create_subprocess_exec(  # our interpreter, no shell
            sys.executable, "-m", "tzurot.inference", env=env, stderr=out
        )
    try:
        port = await bound_port(log, "inference", process, since=len(earlier), within=120)
        assert port not in {0, 1}
        await wait_serving(f"127.0.0.1:{port}", "inference", pki, 60, process)
    finally:
        process.kill()
        await process.wait()


async def test_a_service_that_could_not_listen_is_an_error_at_once(
    pki: Path, tmp_path: Path
) -> None:
    log = tmp_path / "inference.log"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        env = {**inference_env(pki), "TZUROT_LISTEN": f"127.0.0.1:{taken.getsockname()[1]}"}
        with log.open("w") as out:
            process = await asyncio.create_subprocess_exec(  # our interpreter, no shell
                sys.executable, "-m", "tzurot.inference", env=env, stderr=out
            )
        try:
            with pytest.raises(RuntimeError, match="cannot listen on"):
                await bound_port(log, "inference", process, within=120)
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def test_a_service_process_binds_port_0_first_and_the_same_port_after(
    pki: Path, tmp_path: Path
) -> None:
    service = ServiceProcess("inference", 0, inference_env(pki), tmp_path / "inference.log")
    try:
        await service.start(pki, within=120)
        port = service.port
        assert port != 0
        await service.signal(signal.SIGTERM)
        assert await service.wait() == 0
        await service.start(pki, within=120)  # a restart: found where it was
        assert service.port == port
    finally:
        await service.stop()
