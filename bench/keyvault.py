"""Keyvault figures: Decrypt latency over mTLS (as inference calls it) and rewrap speed.

Keyvault runs in-process on loopback with real mTLS and an embedded Postgres; the client
presents the `inference` certificate for Decrypt and `cli` for RewrapKeys.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import tempfile
import time
import uuid
from pathlib import Path

from pydantic import SecretStr

from bench.results import Figure, summarise
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.cli.migrate import migrate_all
from tzurot.db.engine import create_engine
from tzurot.keyvault.app import start_keyvault
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.keyvault.masterkey import load_master_key_ring
from tzurot.keyvault.service import KeyVault
from tzurot.keyvault.store import PostgresKeyStore
from tzurot.runtime.client import secure_channel
from tzurot.runtime.tls import SERVICE_IDENTITIES, generate_dev_pki, load_tls
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc


def _line(version: int) -> str:
    return f"{version}:{base64.b64encode(secrets.token_bytes(32)).decode()}\n"


def run(quick: bool) -> list[Figure]:
    decrypts, keys = (200, 500) if quick else (2000, 5000)
    return asyncio.run(_run(decrypts, keys))


async def _run(decrypts: int, keys: int) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="tzbench-kv-", dir="/tmp") as tmp:
        root = Path(tmp)
        generate_dev_pki(root / "pki", SERVICE_IDENTITIES)
        key_file = root / "master.key"
        key_file.write_text(_line(1))
        with local_postgres(root / "pg", delete_on_exit=True) as server_url:
            database_url = create_database(server_url, f"bench_{uuid.uuid4().hex[:8]}")
            migrate_all(database_url)
            app = await start_keyvault(
                KeyVaultSettings(
                    listen="127.0.0.1:0",
                    tls_dir=root / "pki" / "keyvault",
                    database_url=SecretStr(database_url),
                    master_key_file=key_file,
                    log_level="WARNING",
                )
            )
            engine = create_engine(database_url)
            try:
                writer = KeyVault(
                    PostgresKeyStore(engine),
                    load_master_key_ring(None, key_file),
                    caller=lambda: "gateway",
                )
                users = [str(uuid.uuid4()) for _ in range(keys)]
                for n, user in enumerate(users):
                    await writer.put_key(user, "openrouter", SecretStr(f"sk-bench-{n:06d}-key"))

                channel = secure_channel(
                    f"127.0.0.1:{app.port}",
                    load_tls(root / "pki" / "inference"),
                    server_identity="keyvault",
                    default_timeout=30.0,
                )
                stub = kv_grpc.KeyVaultServiceStub(channel)
                for user in users[:20]:  # warm the connection
                    await stub.Decrypt(kv.DecryptRequest(user_id=user, provider="openrouter"))
                latencies: list[float] = []
                for n in range(decrypts):
                    started = time.perf_counter()
                    await stub.Decrypt(
                        kv.DecryptRequest(user_id=users[n % keys], provider="openrouter")
                    )
                    latencies.append((time.perf_counter() - started) * 1000)
                await channel.close()

                key_file.write_text(key_file.read_text() + _line(2))
                cli = secure_channel(
                    f"127.0.0.1:{app.port}",
                    load_tls(root / "pki" / "cli"),
                    server_identity="keyvault",
                    default_timeout=600.0,
                )
                started = time.perf_counter()
                async for _ in kv_grpc.KeyVaultServiceStub(cli).RewrapKeys(
                    kv.RewrapKeysRequest(batch_size=100)
                ):
                    pass
                seconds = time.perf_counter() - started
                await cli.close()
            finally:
                await app.stop()
                await engine.dispose()
    per_1000_ms = seconds / keys * 1000 * 1000
    return [
        summarise("keyvault Decrypt over mTLS", latencies, audited="yes"),
        Figure(
            name="keyvault rewrap per 1000 keys",
            unit="ms",
            samples=keys,
            p50=per_1000_ms,
            p99=per_1000_ms,
            mean=per_1000_ms,
            extra={"keys": keys, "batch": 100, "total_s": round(seconds, 2)},
        ),
    ]
