"""The services gateway calls, served as small in-process servers for tests that start it.

Each is built with the real `create_server` (with its own identity certificate, admitting
gateway alone) around whatever servicer the test gives (test_grpc's minimal ones, or a
subclass), so gateway's gRPC adapters run for real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc

from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.v1 import inference_pb2_grpc as inf_grpc
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc
from tzurot.v1 import memory_pb2_grpc as mem_grpc

Add = Callable[[grpc.aio.Server], None]


async def serve_backends(
    pki: Path,
    inference: inf_grpc.InferenceServiceServicer,
    memory: mem_grpc.MemoryServiceServicer,
    keyvault: kv_grpc.KeyVaultServiceServicer,
) -> tuple[list[RunningServer], tuple[int, int, int]]:
    """Inference, memory and keyvault served on ports of their own: the running servers (the
    caller stops them) and their ports, in that order (test_grpc's `gateway_settings`)."""
    backends: list[tuple[str, str, Add]] = [
        (
            "inference",
            "tzurot.v1.InferenceService",
            lambda s: inf_grpc.add_InferenceServiceServicer_to_server(inference, s),
        ),
        (
            "memory",
            "tzurot.v1.MemoryService",
            lambda s: mem_grpc.add_MemoryServiceServicer_to_server(memory, s),
        ),
        (
            "keyvault",
            "tzurot.v1.KeyVaultService",
            lambda s: kv_grpc.add_KeyVaultServiceServicer_to_server(keyvault, s),
        ),
    ]
    servers: list[RunningServer] = []
    try:
        for identity, service, add in backends:
            running = await create_server(
                service=identity,
                settings=ServiceSettings(listen="127.0.0.1:0", tls_dir=pki / identity),
                registrations=[ServiceRegistration(service, add)],
                default_allowed=frozenset({"gateway"}),
            )
            servers.append(running)
            await running.start()
    except BaseException:
        for server in servers:
            await server.stop(0)
        raise
    inference_server, memory_server, keyvault_server = servers
    return servers, (inference_server.port, memory_server.port, keyvault_server.port)
