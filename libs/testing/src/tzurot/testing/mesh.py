"""The whole mesh in one process: the four gRPC services on real loopback ports with real mTLS.

Each service is started through its own `start_*` entry (the same code `python -m` runs),
against one migrated Postgres database, with inference pointed at a local fake provider.
End-to-end tests and benchmarks talk to the gateway as `bot` or `cli` would.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from pydantic import SecretStr

from tzurot.cli.migrate import migrate_all
from tzurot.gateway.app import GatewayApp, start_gateway
from tzurot.gateway.clock import Clock
from tzurot.gateway.config import GatewaySettings
from tzurot.inference.app import start_inference
from tzurot.inference.config import InferenceSettings, ProviderSetting
from tzurot.keyvault.app import start_keyvault
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.memory.app import MemoryApp, start_memory
from tzurot.memory.config import MemorySettings
from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki, load_tls
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

LOOPBACK = "127.0.0.1:0"

ProviderEntry = str | ProviderSetting | Mapping[str, Any]
"""A `TZUROT_PROVIDERS` entry: a base URL, or a declaration (`{"base_url": …, "speech": true,
"keyless": true}`, as JSON gives it, or its `ProviderSetting`)."""


@dataclass(frozen=True)
class MeshPorts:
    gateway: int
    inference: int
    memory: int
    keyvault: int


@dataclass
class InProcessMesh:
    """A running mesh; `gateway_stub(identity)` connects with that identity's certificate."""

    pki: Path
    database_url: str
    ports: MeshPorts
    _stack: AsyncExitStack
    # The running gateway, for tests that drive its scheduler (free will) directly.
    gateway_app: GatewayApp | None = None
    # Its settings, to start more replicas of it (tests of work shared by replicas).
    gateway_settings: GatewaySettings | None = None
    # The running memory service, for tests that take it down and bring it back.
    memory_app: MemoryApp | None = None
    memory_settings: MemorySettings | None = None

    async def stop_memory(self) -> None:
        """Takes memory down (its port refuses connections); the embedder stays loaded."""
        assert self.memory_app is not None, "memory is not running"
        self.memory_app.owns_embedder = False  # kept for the restart
        await self.memory_app.stop()

    async def start_memory(self) -> None:
        """Brings memory back on the same port, with the embedder it had."""
        assert self.memory_app is not None
        assert self.memory_settings is not None
        embedder = self.memory_app.embedder
        settings = self.memory_settings.model_copy(
            update={"listen": f"127.0.0.1:{self.ports.memory}"}
        )
        self.memory_app = await start_memory(settings, embedder=embedder)
        self.memory_app.owns_embedder = True

    @property
    def gateway_addr(self) -> str:
        return f"127.0.0.1:{self.ports.gateway}"

    async def channel(self, identity: str = "bot", target: str = "gateway") -> grpc.aio.Channel:
        port = getattr(self.ports, target)
        channel = secure_channel(
            f"127.0.0.1:{port}",
            load_tls(self.pki / identity),
            server_identity=target,
            default_timeout=30.0,
        )
        self._stack.push_async_callback(channel.close)
        return channel

    async def gateway_stub(self, identity: str = "bot") -> gw_grpc.GatewayServiceAsyncStub:
        return gw_grpc.GatewayServiceStub(await self.channel(identity))


@asynccontextmanager
async def in_process_mesh(
    database_url: str,
    workdir: Path,
    provider: FakeProvider,
    *,
    providers: Mapping[str, ProviderEntry] | None = None,
    inference: Mapping[str, Any] | None = None,
    gateway: Mapping[str, Any] | None = None,
    gateway_clock: Clock | None = None,
) -> AsyncIterator[InProcessMesh]:
    """Migrates `database_url`, makes a dev PKI in `workdir` and starts the four services.

    Every provider name (openrouter, openai and any in `providers`) points at `provider`
    unless `providers` says otherwise (a base URL, or a declaration with `speech`/`keyless`);
    `inference`/`gateway` override settings fields; `gateway_clock` replaces the gateway's
    scheduling clock (free will, cooldowns).
    """
    pki = workdir / "pki"
    generate_dev_pki(pki, SERVICE_IDENTITIES)
    migrate_all(database_url)
    db = SecretStr(database_url)
    master_key = SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())
    async with AsyncExitStack() as stack:
        keyvault = await start_keyvault(
            KeyVaultSettings(
                listen=LOOPBACK, tls_dir=pki / "keyvault", database_url=db, master_key=master_key
            )
        )
        stack.push_async_callback(keyvault.stop)
        memory_settings = MemorySettings(listen=LOOPBACK, tls_dir=pki / "memory", database_url=db)
        memory = await start_memory(memory_settings)
        handle: list[InProcessMesh] = []

        async def stop_current_memory() -> None:
            # The memory app a test restarted, if it did, else the first one.
            await (handle[0].memory_app if handle and handle[0].memory_app else memory).stop()

        stack.push_async_callback(stop_current_memory)
        endpoints = {"openrouter": provider.base_url, "openai": provider.base_url}
        inference_app = await start_inference(
            InferenceSettings(
                listen=LOOPBACK,
                tls_dir=pki / "inference",
                memory_addr=f"127.0.0.1:{memory.port}",
                keyvault_addr=f"127.0.0.1:{keyvault.port}",
                providers={**endpoints, **_declared(providers or {})},
                **{"provider_max_retries": 1, **(inference or {})},
            )
        )
        stack.push_async_callback(inference_app.stop)
        gateway_settings = GatewaySettings(
            listen=LOOPBACK,
            tls_dir=pki / "gateway",
            database_url=db,
            inference_addr=f"127.0.0.1:{inference_app.port}",
            memory_addr=f"127.0.0.1:{memory.port}",
            keyvault_addr=f"127.0.0.1:{keyvault.port}",
            **(gateway or {}),
        )
        gateway_app = await start_gateway(gateway_settings, clock=gateway_clock)
        stack.push_async_callback(gateway_app.stop)
        ports = MeshPorts(gateway_app.port, inference_app.port, memory.port, keyvault.port)
        mesh = InProcessMesh(
            pki=pki,
            database_url=database_url,
            ports=ports,
            _stack=stack,
            gateway_app=gateway_app,
            gateway_settings=gateway_settings,
            memory_app=memory,
            memory_settings=memory_settings,
        )
        handle.append(mesh)
        yield mesh


def _declared(providers: Mapping[str, ProviderEntry]) -> dict[str, str | ProviderSetting]:
    """`providers` as InferenceSettings takes them: a declaration given as a mapping (the
    JSON object form) made a `ProviderSetting`, validated as the variable would be."""
    return {
        name: (
            given
            if isinstance(given, str | ProviderSetting)
            else ProviderSetting.model_validate(dict(given))
        )
        for name, given in providers.items()
    }
