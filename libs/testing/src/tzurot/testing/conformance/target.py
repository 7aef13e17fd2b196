"""The service under test: its address and the certificates to call it with.

`TZUROT_CONFORMANCE_ADDR` (host:port) and `TZUROT_CONFORMANCE_PKI` (a folder with one
certificate folder per identity, as `tzurot certs --out DIR` writes it) name an external
implementation; without them `reference_target` starts the Python mesh on loopback.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor, message, message_factory

from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import load_tls
from tzurot.testing.e2e import USER_KEY, echo_mesh
from tzurot.v1 import gateway_pb2, inference_pb2, keyvault_pb2, memory_pb2

SERVICES: Mapping[str, descriptor.ServiceDescriptor] = {
    "gateway": gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"],
    "inference": inference_pb2.DESCRIPTOR.services_by_name["InferenceService"],
    "memory": memory_pb2.DESCRIPTOR.services_by_name["MemoryService"],
    "keyvault": keyvault_pb2.DESCRIPTOR.services_by_name["KeyVaultService"],
}
"""The services a conformance run can target, from the compiled contracts."""

ENV_ADDR = "TZUROT_CONFORMANCE_ADDR"
ENV_PKI = "TZUROT_CONFORMANCE_PKI"
ENV_SERVICE = "TZUROT_CONFORMANCE_SERVICE"
ENV_API_KEY = "TZUROT_CONFORMANCE_API_KEY"


@dataclass
class Target:
    """One running implementation of `service`, reachable at `address` with certs from `pki`."""

    service: str
    address: str
    pki: Path
    api_key: str = USER_KEY
    """A provider key the mesh behind a gateway accepts (openrouter), for Generate."""
    external: bool = False
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def channel(self, identity: str) -> grpc.aio.Channel:
        """An mTLS channel presenting `identity`'s certificate (kept open for the run)."""
        if identity not in self._channels:
            self._channels[identity] = secure_channel(
                self.address,
                load_tls(self.pki / identity),
                server_identity=self.service,
                default_timeout=30.0,
            )
        return self._channels[identity]

    def stub(self, identity: str) -> Any:
        """The generated stub of the service, as `identity`."""
        module = {
            "gateway": "tzurot.v1.gateway_pb2_grpc",
            "inference": "tzurot.v1.inference_pb2_grpc",
            "memory": "tzurot.v1.memory_pb2_grpc",
            "keyvault": "tzurot.v1.keyvault_pb2_grpc",
        }[self.service]
        grpc_module = __import__(module, fromlist=["_"])
        name = SERVICES[self.service].name
        return getattr(grpc_module, f"{name}Stub")(self.channel(identity))

    def call(self, identity: str, method: descriptor.MethodDescriptor) -> Callable[..., Any]:
        """A generic callable for any method of the contract (new RPCs need no code)."""
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        path = f"/{method.containing_service.full_name}/{method.name}"
        channel = self.channel(identity)
        serialize = request_class.SerializeToString
        if method.client_streaming and method.server_streaming:
            return channel.stream_stream(
                path, request_serializer=serialize, response_deserializer=response_class.FromString
            )
        if method.client_streaming:
            return channel.stream_unary(
                path, request_serializer=serialize, response_deserializer=response_class.FromString
            )
        if method.server_streaming:
            return channel.unary_stream(
                path, request_serializer=serialize, response_deserializer=response_class.FromString
            )
        return channel.unary_unary(
            path, request_serializer=serialize, response_deserializer=response_class.FromString
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


def empty_request(method: descriptor.MethodDescriptor) -> message.Message:
    request: message.Message = message_factory.GetMessageClass(method.input_type)()
    return request


def external_target(service: str) -> Target | None:
    """The implementation named by the environment, or None (use the reference)."""
    address = os.environ.get(ENV_ADDR)
    if not address:
        return None
    pki = os.environ.get(ENV_PKI)
    if not pki:
        raise RuntimeError(f"{ENV_ADDR} is set: set {ENV_PKI} to the certificates folder too")
    wanted = os.environ.get(ENV_SERVICE)
    if wanted and wanted != service:
        raise RuntimeError(f"{ENV_ADDR} serves {wanted}, not {service}")
    return Target(
        service,
        address,
        Path(pki),
        api_key=os.environ.get(ENV_API_KEY, USER_KEY),
        external=True,
    )


@asynccontextmanager
async def reference_target(service: str, database_url: str, workdir: Path) -> AsyncIterator[Target]:
    """The Python implementation of `service`, inside the whole mesh (with a fake provider)."""
    async with echo_mesh(database_url, workdir) as harness:
        port = getattr(harness.mesh.ports, service)
        target = Target(service, f"127.0.0.1:{port}", harness.mesh.pki)
        try:
            yield target
        finally:
            await target.close()


def methods(service: str) -> Sequence[descriptor.MethodDescriptor]:
    return list(SERVICES[service].methods)
