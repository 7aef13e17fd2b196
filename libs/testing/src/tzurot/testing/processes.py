"""A service as its own process (`python -m tzurot.<service>`), beside an in-process mesh.

For tests that signal or kill a real process: SIGTERM's drain and SIGKILL's orphans happen
only to a process. It shares the mesh's database, certificates and the other services.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tzurot.runtime.client import secure_channel
from tzurot.runtime.forkserver import runs_service
from tzurot.runtime.tls import load_tls
from tzurot.testing.mesh import InProcessMesh


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServiceProcess:
    """`python -m tzurot.<service>` on a fixed port; start, signal and start again."""

    service: str
    port: int
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None
    starts: list[float] = field(default_factory=list)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, pki: Path, within: float = 240.0) -> None:
        """Starts the process and waits until its health check says SERVING."""
        with self.log.open("a") as out:
            self.process = await asyncio.create_subprocess_exec(  # our interpreter, no shell
                sys.executable, "-m", f"tzurot.{self.service}", env=self.env, stderr=out
            )
        self.starts.append(time.monotonic())
        await wait_serving(self.addr, self.service, pki, within, self.process)

    async def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, within: float = 60.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), within)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def wait_serving(
    addr: str,
    service: str,
    pki: Path,
    within: float,
    process: asyncio.subprocess.Process | None = None,
) -> None:
    """Polls grpc.health.v1 over mTLS (as `cli`) until SERVING; fails if `process` exits."""
    deadline = time.monotonic() + within
    async with secure_channel(
        addr, load_tls(pki / "cli"), server_identity=service, default_timeout=1.0
    ) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if process is not None and process.returncode is not None:
                raise RuntimeError(f"{service} exited with {process.returncode} at start")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service} at {addr} not SERVING within {within} s")
            await asyncio.sleep(0.1)


def gateway_process(
    mesh: InProcessMesh, log: Path, settings: Mapping[str, str] | None = None
) -> ServiceProcess:
    """Another gateway replica, as a process, in front of the mesh's inference, memory and
    keyvault and on its database; `settings` are more TZUROT_* variables."""
    port = free_port()
    env = {
        **os.environ,
        "TZUROT_LISTEN": f"127.0.0.1:{port}",
        "TZUROT_TLS_DIR": str(mesh.pki / "gateway"),
        "TZUROT_DATABASE_URL": mesh.database_url,
        "TZUROT_INFERENCE_ADDR": f"127.0.0.1:{mesh.ports.inference}",
        "TZUROT_MEMORY_ADDR": f"127.0.0.1:{mesh.ports.memory}",
        "TZUROT_KEYVAULT_ADDR": f"127.0.0.1:{mesh.ports.keyvault}",
        "TZUROT_FREEWILL_TICK_SECONDS": "0",
        "TZUROT_LOG_FORMAT": "json",
        **(settings or {}),
    }
    return ServiceProcess("gateway", port, env, log)


def child_pid(parent: int, service: str) -> int | None:
    """The pid of `parent`'s child running `tzurot.<service>` (its own interpreter, or forked
    by `tzurot up`'s fork server), if there is one."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and runs_service(
            int(entry.name), service
        ):
            return int(entry.name)
    return None
