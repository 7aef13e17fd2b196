"""A service as its own process (`python -m tzurot.<service>`), beside an in-process mesh.

For tests that signal or kill a real process: SIGTERM's drain and SIGKILL's orphans happen
only to a process. It shares the mesh's database, certificates and the other services.

A process started by a test listens on port 0 and says the port it bound (`bound_port`): a
port found free beforehand is only free when looked at, and may be taken (an outgoing
connection's ephemeral port, another test) before the service binds it.
"""

from __future__ import annotations

import asyncio
import json
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
    """A loopback port free now: for an address nothing listens on, or one a test binds
    itself at once (a service started on it may find it taken: prefer port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def bound_port(
    log: Path,
    service: str,
    process: asyncio.subprocess.Process,
    *,
    since: int = 0,
    within: float = 240.0,
) -> int:
    """The port `process` (`python -m tzurot.<service>`, listening on port 0, its JSON log
    written to `log` from byte `since` on) bound: the one its "server.created" entry names.
    RuntimeError if it exits before, TimeoutError after `within` s."""
    deadline = time.monotonic() + within
    while True:
        port = _created_port(log, service, since)
        if port is not None:
            return port
        if process.returncode is not None:
            raise RuntimeError(
                f"{service} exited with {process.returncode} before it listened:\n"
                + _read_from(log, since)[-3000:]
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service} said no port it listens on within {within} s")
        await asyncio.sleep(0.05)


def _created_port(log: Path, service: str, since: int) -> int | None:
    for line in _read_from(log, since).splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # still being written
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(entry, dict)
            and entry.get("event") == "server.created"
            and entry.get("service") == service
        ):
            return int(entry["port"])
    return None


def _read_from(log: Path, since: int) -> str:
    try:
        with log.open("rb") as read:
            read.seek(since)
            return read.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


@dataclass
class ServiceProcess:
    """`python -m tzurot.<service>`; start, signal and start again. `port` 0: the port it
    binds on its first start (`bound_port`), kept for every start after (a restarted
    service is found at the same address, as behind a Kubernetes Service)."""

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
        since = self.log.stat().st_size if self.log.exists() else 0
        env = {**self.env, "TZUROT_LISTEN": self.addr, "TZUROT_LOG_FORMAT": "json"}
        with self.log.open("a") as out:
            self.process = await asyncio.create_subprocess_exec(  # our interpreter, no shell
                sys.executable, "-m", f"tzurot.{self.service}", env=env, stderr=out
            )
        self.starts.append(time.monotonic())
        if self.port == 0:
            self.port = await bound_port(
                self.log, self.service, self.process, since=since, within=within
            )
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
    keyvault and on its database; `settings` are more TZUROT_* variables. Its port is the
    one it binds on its first start."""
    env = {
        **os.environ,
        "TZUROT_TLS_DIR": str(mesh.pki / "gateway"),
        "TZUROT_DATABASE_URL": mesh.database_url,
        "TZUROT_INFERENCE_ADDR": f"127.0.0.1:{mesh.ports.inference}",
        "TZUROT_MEMORY_ADDR": f"127.0.0.1:{mesh.ports.memory}",
        "TZUROT_KEYVAULT_ADDR": f"127.0.0.1:{mesh.ports.keyvault}",
        "TZUROT_FREEWILL_TICK_SECONDS": "0",
        **(settings or {}),
    }
    return ServiceProcess("gateway", 0, env, log)


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
