"""Wires gateway: database, clients of inference/memory/keyvault, use-cases, gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import check_database, create_engine
from tzurot.gateway.admin import Admin
from tzurot.gateway.admin_server import GatewayAdminServicer
from tzurot.gateway.clients import GrpcInference, GrpcKeyVault, GrpcMemory
from tzurot.gateway.config import GatewaySettings
from tzurot.gateway.ratelimit import BucketPolicy
from tzurot.gateway.resolve import global_default_config
from tzurot.gateway.service import Gateway, GatewayLimits
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.tables import SCHEMA
from tzurot.gateway.wallet import Wallet
from tzurot.runtime.client import secure_channel
from tzurot.runtime.server import RunningServer, ServiceRegistration, create_server
from tzurot.runtime.tls import load_tls
from tzurot.v1 import gateway_pb2_grpc

SERVICE_NAME = "tzurot.v1.GatewayService"


@dataclass
class GatewayApp:
    running: RunningServer
    channels: tuple[grpc.aio.Channel, ...]
    engine: AsyncEngine
    grace: float

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self) -> None:
        await self.running.stop(self.grace)
        for channel in self.channels:
            await channel.close()
        await self.engine.dispose()


async def start_gateway(settings: GatewaySettings) -> GatewayApp:
    # Local configuration fails first, before the network is touched.
    tls = load_tls(settings.tls_dir)
    engine = create_engine(
        settings.database_url.get_secret_value(), server_settings={"application_name": "gateway"}
    )
    channels: list[grpc.aio.Channel] = []

    def channel(addr: str, identity: str, retry_service: str | None = None) -> grpc.aio.Channel:
        made = secure_channel(
            addr,
            tls,
            server_identity=identity,
            default_timeout=settings.default_deadline_seconds,
            retry_service=retry_service,
            max_attempts=settings.inference_max_attempts,
        )
        channels.append(made)
        return made

    try:
        await check_database(engine, SCHEMA)
        store = GatewayStore(engine)
        inference = GrpcInference(
            channel(settings.inference_addr, "inference", "tzurot.v1.InferenceService"),
            generate_timeout=settings.generate_deadline_seconds,
        )
        memory = GrpcMemory(channel(settings.memory_addr, "memory"))
        keyvault = GrpcKeyVault(channel(settings.keyvault_addr, "keyvault"))
        gateway = Gateway(
            store=store,
            inference=inference,
            memory=memory,
            keyvault=keyvault,
            limits=GatewayLimits(
                max_message_chars=settings.max_message_chars,
                max_history_messages=settings.max_history_messages,
                duplicate_wait_seconds=settings.duplicate_wait_seconds,
                default_config=global_default_config(
                    settings.default_provider, settings.default_model
                ),
                job_lease_seconds=settings.job_lease_seconds,
                superusers=settings.superusers,
                user_bucket=_bucket(settings.rate_user_capacity, settings.rate_user_per_minute),
                channel_bucket=_bucket(
                    settings.rate_channel_capacity, settings.rate_channel_per_minute
                ),
                guest_mode=settings.guest_mode,
                demo_all_free=settings.demo_all_free,
                guest_daily_budget=settings.guest_daily_budget,
                guest_user_bucket=_bucket(
                    settings.guest_user_per_day, settings.guest_user_per_day / (24 * 60)
                ),
            ),
        )
        wallet = Wallet(users=gateway, checker=inference, keyvault=keyvault)
        admin = Admin(
            gateway=gateway,
            store=store,
            memory=memory,
            keyvault=keyvault,
            operator_identities=settings.operator_identities,
            skills=inference,
        )
        admin.bot_owner_id = settings.bot_owner_id
        admin.superuser_ids = settings.superusers
        servicer = GatewayAdminServicer(gateway, wallet, admin)
        running = await create_server(
            service="gateway",
            settings=settings,
            registrations=[
                ServiceRegistration(
                    SERVICE_NAME,
                    lambda server: gateway_pb2_grpc.add_GatewayServiceServicer_to_server(
                        servicer, server
                    ),
                )
            ],
            default_allowed=settings.allowed_callers,
        )
        await running.start()
    except BaseException:
        for made in channels:
            await made.close()
        await engine.dispose()
        raise
    return GatewayApp(
        running=running,
        channels=tuple(channels),
        engine=engine,
        grace=settings.grace_seconds,
    )


def _bucket(capacity: int, per_minute: float) -> BucketPolicy | None:
    """A bucket policy, or None (no limit) when the capacity is 0."""
    if capacity <= 0 or per_minute <= 0:
        return None
    return BucketPolicy(capacity=capacity, refill_per_second=per_minute / 60)
