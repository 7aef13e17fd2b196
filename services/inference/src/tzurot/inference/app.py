"""Wires inference: providers, the memory and keyvault channels, the LLM client, the server."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from tzurot.inference.clients import GrpcHistory, GrpcKeyVault
from tzurot.inference.config import InferenceSettings
from tzurot.inference.keys import KeyResolver
from tzurot.inference.llm import LlmClient
from tzurot.inference.providers import ProviderRegistry
from tzurot.inference.server import InferenceServicer
from tzurot.inference.service import Inference
from tzurot.runtime.client import secure_channel
from tzurot.runtime.server import (
    AuthorizationPolicy,
    RunningServer,
    ServiceRegistration,
    create_server,
)
from tzurot.runtime.tls import load_tls
from tzurot.v1 import inference_pb2_grpc

SERVICE_NAME = "tzurot.v1.InferenceService"
METHODS = ("GenerateReply", "ValidateKey", "DescribeImage", "TranscribeAudio")

AUTHORIZATION: AuthorizationPolicy = {
    f"/{SERVICE_NAME}/{name}": frozenset({"gateway"}) for name in METHODS
}
"""Who may call each method; anything not listed is refused (default_allowed is empty)."""


@dataclass
class InferenceApp:
    running: RunningServer
    channels: tuple[grpc.aio.Channel, ...]
    llm: LlmClient
    grace: float

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self) -> None:
        """Drains the server, then closes the channels and the provider connection pool."""
        try:
            await self.running.stop(self.grace)
        finally:
            await _close(self.channels, self.llm)


async def _close(channels: tuple[grpc.aio.Channel, ...], llm: LlmClient) -> None:
    for channel in channels:
        await channel.close()
    await llm.aclose()


async def start_inference(settings: InferenceSettings) -> InferenceApp:
    """Starts inference with its mTLS server and channels to memory and keyvault."""
    # Local configuration fails first, before anything is opened.
    providers = ProviderRegistry(settings.providers)
    tls = load_tls(settings.tls_dir)
    memory = secure_channel(
        settings.memory_addr,
        tls,
        server_identity="memory",
        default_timeout=settings.default_deadline_seconds,
    )
    keyvault = secure_channel(
        settings.keyvault_addr,
        tls,
        server_identity="keyvault",
        default_timeout=settings.default_deadline_seconds,
    )
    channels = (memory, keyvault)
    llm = LlmClient(
        max_retries=settings.provider_max_retries,
        timeout_seconds=settings.provider_timeout_seconds,
    )
    try:
        inference = Inference(
            providers=providers,
            keys=KeyResolver(GrpcKeyVault(keyvault), settings.system_keys, settings.free_models),
            history=GrpcHistory(memory),
            llm=llm,
            history_limit=settings.history_limit,
        )
        servicer = InferenceServicer(inference)
        running = await create_server(
            service="inference",
            settings=settings,
            registrations=[
                ServiceRegistration(
                    SERVICE_NAME,
                    lambda server: inference_pb2_grpc.add_InferenceServiceServicer_to_server(
                        servicer, server
                    ),
                )
            ],
            authorization=AUTHORIZATION,
            default_allowed=frozenset(),
        )
        await running.start()
    except BaseException:
        await _close(channels, llm)
        raise
    return InferenceApp(running=running, channels=channels, llm=llm, grace=settings.grace_seconds)
