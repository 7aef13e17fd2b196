"""Wires keyvault: master key ring, database, use-cases and the mTLS gRPC server."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import check_database, create_engine, dispose
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.keyvault.masterkey import load_master_key_ring
from tzurot.keyvault.migrations import SCRIPT_LOCATION
from tzurot.keyvault.server import KeyVaultServicer
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.keyvault.tables import SCHEMA
from tzurot.keyvault.warm import warm_up
from tzurot.runtime.server import (
    AuthorizationPolicy,
    RunningServer,
    ServiceRegistration,
    create_server,
)
from tzurot.runtime.tls import load_tls
from tzurot.v1 import keyvault_pb2_grpc

SERVICE_NAME = "tzurot.v1.KeyVaultService"


def _methods(callers: frozenset[str], *names: str) -> dict[str, frozenset[str]]:
    return {f"/{SERVICE_NAME}/{name}": callers for name in names}


AUTHORIZATION: AuthorizationPolicy = {
    **_methods(frozenset({"inference"}), "Decrypt"),
    **_methods(frozenset({"gateway"}), "PutKey", "DeleteKey", "ListKeys", "MarkUsed"),
    # The operator: the cli certificate, or `tzurot admin` inside the gateway pod.
    **_methods(frozenset({"cli", "gateway"}), "RewrapKeys", "GetRewrapProgress"),
}
"""Who may call each method; anything not listed is refused (default_allowed is empty)."""


@dataclass
class KeyVaultApp:
    running: RunningServer
    engine: AsyncEngine
    grace: float

    @property
    def port(self) -> int:
        return self.running.port

    async def stop(self) -> None:
        await self.running.stop(self.grace)
        await dispose(self.engine)


async def start_keyvault(
    settings: KeyVaultSettings, *, ring: MasterKeyRing | None = None
) -> KeyVaultApp:
    """Starts keyvault; `ring` defaults to the master key from the settings."""
    # Local configuration fails first, before the network is touched.
    if ring is None:
        ring = load_master_key_ring(settings.master_key, settings.master_key_file)
    load_tls(settings.tls_dir)
    engine = create_engine(
        settings.database_url.get_secret_value(), server_settings={"application_name": "keyvault"}
    )
    try:
        await check_database(engine, SCHEMA, script_location=SCRIPT_LOCATION)
        key_file = settings.master_key_file
        store = PostgresKeyStore(engine)
        vault = KeyVault(
            store,
            ring,
            default_batch_size=settings.rewrap_batch_size,
            # A mounted file can gain a version while we run; an env value cannot.
            ring_source=None if key_file is None else lambda: load_master_key_ring(None, key_file),
        )
        servicer = KeyVaultServicer(vault)
        running = await create_server(
            service="keyvault",
            settings=settings,
            registrations=[
                ServiceRegistration(
                    SERVICE_NAME,
                    lambda server: keyvault_pb2_grpc.add_KeyVaultServiceServicer_to_server(
                        servicer, server
                    ),
                )
            ],
            authorization=AUTHORIZATION,
            default_allowed=frozenset(),
        )
        await warm_up(engine, store)
        await running.start()
    except BaseException:
        await engine.dispose()
        raise
    return KeyVaultApp(running=running, engine=engine, grace=settings.grace_seconds)
