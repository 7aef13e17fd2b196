"""Inference contract fixtures: a dev PKI, and fake memory and keyvault gRPC servers.

The fakes of memory and keyvault are real mTLS gRPC servers with the memory and keyvault
identities, built by the same runtime bootstrap as the real services, so inference's
channels, identity pinning and error decoding are exercised for real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from tzurot.runtime.config import ServiceSettings
from tzurot.runtime.errors import NotFound, TzurotError
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

Context = grpc.aio.ServicerContext[object, object]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dev CA and a certificate folder for every service identity."""
    root = tmp_path_factory.mktemp("inference-pki") / "pki"
    generate_dev_pki(root, SERVICE_IDENTITIES)
    return root


@dataclass
class FakeKeyVault(kv_grpc.KeyVaultServiceServicer):
    """Decrypt from a dict; NOT_FOUND (reason NO_API_KEY) like the real one."""

    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    async def Decrypt(self, request: kv.DecryptRequest, context: Context) -> kv.DecryptResponse:
        self.calls.append((request.user_id, request.provider))
        key = self.keys.get((request.user_id, request.provider))
        if key is None:
            raise NotFound(f"no {request.provider} key stored for this user", reason="NO_API_KEY")
        return kv.DecryptResponse(api_key=key)


@dataclass
class FakeMemory(mem_grpc.MemoryServiceServicer):
    """GetHistory from a dict keyed by (channel, personality): newest `limit`, oldest first."""

    turns: dict[tuple[str, str], list[common.Turn]] = field(default_factory=dict)
    requests: list[mem.GetHistoryRequest] = field(default_factory=list)
    memories: list[common.Memory] | None = None
    """None: QueryMemories is UNIMPLEMENTED, as in a memory service without long-term memory."""
    memory_queries: list[mem.QueryMemoriesRequest] = field(default_factory=list)
    serves_reply_context: bool = False
    """False: GetReplyContext is UNIMPLEMENTED, as in a memory service before it (inference
    then reads with GetHistory and QueryMemories)."""
    reply_contexts: list[mem.GetReplyContextRequest] = field(default_factory=list)
    added: list[mem.AddMemoryRequest] = field(default_factory=list)

    async def AddMemory(
        self, request: mem.AddMemoryRequest, context: Context
    ) -> mem.AddMemoryResponse:
        self.added.append(request)
        stored = common.Memory()
        stored.CopyFrom(request.memory)
        stored.id = f"m-{len(self.added)}"
        return mem.AddMemoryResponse(memory=stored)

    async def GetReplyContext(
        self, request: mem.GetReplyContextRequest, context: Context
    ) -> mem.GetReplyContextResponse:
        self.reply_contexts.append(request)
        if not self.serves_reply_context:
            raise TzurotError(
                "GetReplyContext is not built yet",
                reason="NOT_IMPLEMENTED",
                code=grpc.StatusCode.UNIMPLEMENTED,
            )
        turns = self.turns.get((request.channel_id, request.personality_id), [])
        return mem.GetReplyContextResponse(
            turns=turns[-request.history_limit :] if request.history_limit else turns,
            memories=(self.memories or [])[: request.memory_limit or None],
            memories_unavailable=self.memories is None,
        )

    async def QueryMemories(
        self, request: mem.QueryMemoriesRequest, context: Context
    ) -> mem.QueryMemoriesResponse:
        self.memory_queries.append(request)
        if self.memories is None:
            raise TzurotError(
                "QueryMemories is not built yet",
                reason="NOT_IMPLEMENTED",
                code=grpc.StatusCode.UNIMPLEMENTED,
            )
        return mem.QueryMemoriesResponse(memories=self.memories[: request.limit or None])

    async def GetHistory(
        self, request: mem.GetHistoryRequest, context: Context
    ) -> mem.GetHistoryResponse:
        self.requests.append(request)
        turns = self.turns.get((request.channel_id, request.personality_id), [])
        return mem.GetHistoryResponse(turns=turns[-request.limit :] if request.limit else turns)


async def _serve(
    pki: Path, identity: str, name: str, add: Callable[[grpc.aio.Server], None]
) -> RunningServer:
    settings = ServiceSettings(listen="127.0.0.1:0", tls_dir=pki / identity)
    running = await create_server(
        service=identity,
        settings=settings,
        registrations=[ServiceRegistration(name, add)],
        authorization=None,
        default_allowed=frozenset({"inference"}),
    )
    await running.start()
    return running


@dataclass
class Backends:
    vault: FakeKeyVault
    memory: FakeMemory
    vault_port: int
    memory_port: int


@pytest.fixture
async def backends(pki: Path) -> AsyncIterator[Backends]:
    """Fake keyvault and memory on loopback, callable by the inference identity only."""
    # The stubs mark every RPC abstract; each fake serves the one RPC inference calls.
    vault = FakeKeyVault()  # type: ignore[abstract]  # see above
    memory = FakeMemory()  # type: ignore[abstract]  # see above
    vault_server = await _serve(
        pki,
        "keyvault",
        "tzurot.v1.KeyVaultService",
        lambda server: kv_grpc.add_KeyVaultServiceServicer_to_server(vault, server),
    )
    memory_server = await _serve(
        pki,
        "memory",
        "tzurot.v1.MemoryService",
        lambda server: mem_grpc.add_MemoryServiceServicer_to_server(memory, server),
    )
    try:
        yield Backends(vault, memory, vault_server.port, memory_server.port)
    finally:
        await vault_server.stop(0)
        await memory_server.stop(0)
