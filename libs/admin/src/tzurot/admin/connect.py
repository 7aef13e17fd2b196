"""Where the services are and which certificate the operator presents.

Settings come from the environment (`TZUROT_*`), so the same command works
- locally against `make run` (defaults: gateway 127.0.0.1:15051, inference :15052, memory
  :15053, keyvault :15054, the `cli` certificate in .data/certs/cli);
- inside the gateway pod (`kubectl exec deploy/gateway -- tzurot admin ...`), where the pod's
  own environment names the services (TZUROT_INFERENCE_ADDR, ...) and its certificate
  (TZUROT_TLS_DIR: identity `gateway`);
- through `kubectl tzurot`, which sets the addresses to its port-forwards.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import grpc
from pydantic_settings import BaseSettings, SettingsConfigDict

from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls

SERVICES = ("gateway", "inference", "memory", "keyvault")


class AdminSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TZUROT_", extra="ignore")

    gateway_addr: str = "127.0.0.1:15051"
    inference_addr: str = "127.0.0.1:15052"
    memory_addr: str = "127.0.0.1:15053"
    keyvault_addr: str = "127.0.0.1:15054"
    tls_dir: Path | None = None
    """The pod's own certificate (set in every service pod); wins over cli_tls_dir."""
    cli_tls_dir: Path = Path(".data") / "certs" / "cli"
    rpc_timeout_seconds: float = 30.0

    @property
    def identity_dir(self) -> Path:
        return self.tls_dir or self.cli_tls_dir

    def address(self, service: str) -> str:
        value: str = getattr(self, f"{service}_addr")
        return value


class Mesh:
    """Channels to the services, opened on first use and closed together."""

    def __init__(self, settings: AdminSettings) -> None:
        self.settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stack = AsyncExitStack()

    def channel(self, service: str) -> grpc.aio.Channel:
        if service not in self._channels:
            channel = secure_channel(
                self.settings.address(service),
                load_tls(self.settings.identity_dir),
                server_identity=service,
                default_timeout=self.settings.rpc_timeout_seconds,
            )
            self._channels[service] = channel
            self._stack.push_async_callback(channel.close)
        return self._channels[service]

    async def __aenter__(self) -> Mesh:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._stack.aclose()
