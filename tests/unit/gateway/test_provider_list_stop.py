"""The background refresh of the provider list ends with the gateway (review 355 L5): it was
neither tracked nor cancelled, so one still asking when `GatewayApp.stop` closed inference's
channel failed on it (a closed channel's UsageError), logged as an error with a traceback on
every such stop. `stop` now cancels it before the channels close, and none starts after."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import grpc
from sqlalchemy.ext.asyncio import create_async_engine
from structlog.testing import capture_logs

from tzurot.gateway.app import GatewayApp
from tzurot.gateway.provider_list import KNOWN_PROVIDERS, InferenceProviders, ProviderList


class Channel:
    """Inference's channel: a call still waiting on it when it closes fails, as gRPC's does."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def close(self) -> None:
        self.closed.set()

    async def list_providers(self) -> ProviderList:
        await self.closed.wait()
        raise grpc.aio.UsageError("Cannot invoke RPC: Channel closed!")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_stop_cancels_the_refresh_and_starts_no_other() -> None:
    inference = Channel()
    providers = InferenceProviders(inference)
    assert providers.known().names == KNOWN_PROVIDERS  # starts the refresh, which waits
    await settle()
    with capture_logs() as logs:
        await providers.stop()
        assert providers.known().names == KNOWN_PROVIDERS  # still answered, at once
        await inference.close()
        await settle()
    assert logs == []  # neither the cancelled refresh nor a later one failed on the channel


class Gateway:
    """What `GatewayApp.stop` calls of the gateway, with nothing left to do."""

    def __init__(self) -> None:
        self.key_uses = SimpleNamespace(flush=self._nothing)

    def stopping(self) -> None:
        pass

    async def stop_background(self) -> None:
        pass

    async def release_running_jobs(self) -> int:
        return 0

    async def _nothing(self) -> None:
        pass


class Running:
    async def stop(self, grace: float) -> None:
        pass


async def test_the_gateways_stop_ends_the_refresh_before_closing_inferences_channel() -> None:
    inference = Channel()
    providers = InferenceProviders(inference)
    providers.known()  # a `/wallet list` just before the stop: the refresh is asking
    await settle()
    app = GatewayApp(
        running=cast(Any, Running()),
        channels=cast(Any, (inference,)),
        engine=create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"),
        grace=0.0,
        gateway=cast(Any, Gateway()),
        features=cast(Any, None),
        providers=providers,
    )
    with capture_logs() as logs:
        await app.stop()
        await settle()
    assert inference.closed.is_set()
    assert [e for e in logs if e["log_level"] in {"error", "warning"}] == []
