"""KeyVaultService over real mTLS gRPC on loopback, backed by real Postgres."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import sqlalchemy as sa
import structlog
from pydantic import SecretStr

from tzurot.db.engine import create_engine
from tzurot.keyvault.app import KeyVaultApp, start_keyvault
from tzurot.keyvault.config import KeyVaultSettings
from tzurot.keyvault.crypto import MasterKeyRing
from tzurot.runtime.errors import InvalidArgument, NotFound, from_rpc_error
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.tls import SERVICE_IDENTITIES
from tzurot.testing.channels import channels_to
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

pytestmark = pytest.mark.component

# Deliberately not shaped like any vendor key, so only its absence (not the redactor) passes.
PLANTED = "plantedKEYzq7Wm3Xv9Rt2Lp8Ny4"

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub = kv_grpc.KeyVaultServiceAsyncStub
    Connect = Callable[[KeyVaultApp, str], Stub]


StartVault = Callable[[MasterKeyRing], Awaitable[KeyVaultApp]]


@pytest.fixture
async def start_vault(vault_url: str, pki: Path) -> AsyncIterator[StartVault]:
    """Starts keyvault in-process on port 0 with a given ring; stops all at the end."""
    apps: list[KeyVaultApp] = []

    async def start(ring: MasterKeyRing) -> KeyVaultApp:
        settings = KeyVaultSettings(
            listen="127.0.0.1:0",
            tls_dir=pki / "keyvault",
            database_url=SecretStr(vault_url),
            rewrap_batch_size=4,
        )
        app = await start_keyvault(settings, ring=ring)
        apps.append(app)
        return app

    try:
        yield start
    finally:
        for app in apps:
            await app.stop()


@pytest.fixture
async def connect(pki: Path) -> AsyncIterator[Connect]:
    """A stub to a running keyvault, authenticated as the given identity."""
    async with channels_to("keyvault", pki) as open_channel:
        yield lambda app, identity: kv_grpc.KeyVaultServiceStub(open_channel(app.port, identity))


def new_user() -> str:
    return str(uuid.uuid4())


async def test_put_list_decrypt_delete(
    start_vault: StartVault, connect: Connect, ring_v1: MasterKeyRing
) -> None:
    app = await start_vault(ring_v1)
    gateway, inference = connect(app, "gateway"), connect(app, "inference")
    user = new_user()

    put = await gateway.PutKey(
        kv.PutKeyRequest(user_id=user, provider="openrouter", api_key=PLANTED)
    )
    assert (put.record.user_id, put.record.provider) == (user, "openrouter")
    assert (put.record.master_key_version, put.record.hint) == (1, "8Ny4")
    assert put.record.HasField("created_at")
    assert not put.record.HasField("last_used_at")

    listed = await gateway.ListKeys(kv.ListKeysRequest(user_id=user))
    assert [r.provider for r in listed.records] == ["openrouter"]
    assert PLANTED not in str(listed)

    decrypted = await inference.Decrypt(kv.DecryptRequest(user_id=user, provider="openrouter"))
    assert decrypted.api_key == PLANTED
    await gateway.MarkUsed(kv.MarkUsedRequest(user_id=user, provider="openrouter"))
    [record] = (await gateway.ListKeys(kv.ListKeysRequest(user_id=user))).records
    assert record.HasField("last_used_at")

    deleted = await gateway.DeleteKey(kv.DeleteKeyRequest(user_id=user, provider="openrouter"))
    assert deleted.deleted is True
    again = await gateway.DeleteKey(kv.DeleteKeyRequest(user_id=user, provider="openrouter"))
    assert again.deleted is False

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inference.Decrypt(kv.DecryptRequest(user_id=user, provider="openrouter"))
    error = from_rpc_error(caught.value)
    assert isinstance(error, NotFound)
    assert error.reason == "NO_API_KEY"
    assert error.message == "no openrouter key stored for this user"


async def test_putting_twice_replaces(
    start_vault: StartVault, connect: Connect, ring_v1: MasterKeyRing
) -> None:
    app = await start_vault(ring_v1)
    gateway, inference = connect(app, "gateway"), connect(app, "inference")
    user = new_user()
    for key in ("first-key-aaaaaaaa", "second-key-bbbbbbbb"):
        await gateway.PutKey(kv.PutKeyRequest(user_id=user, provider="openai", api_key=key))
    assert len((await gateway.ListKeys(kv.ListKeysRequest(user_id=user))).records) == 1
    reply = await inference.Decrypt(kv.DecryptRequest(user_id=user, provider="openai"))
    assert reply.api_key == "second-key-bbbbbbbb"


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"user_id": "", "provider": "openai", "api_key": "k" * 20}, "user_id"),
        ({"user_id": "not-a-uuid", "provider": "openai", "api_key": "k" * 20}, "user_id"),
        ({"provider": "", "api_key": "k" * 20}, "provider"),
        ({"provider": "Open AI", "api_key": "k" * 20}, "provider"),
        ({"provider": "openai", "api_key": ""}, "api_key"),
        ({"provider": "openai", "api_key": "k" * 4097}, "api_key"),
        ({"provider": "openai", "api_key": f"{PLANTED} x"}, "api_key"),
        ({"provider": "openai", "api_key": f"{PLANTED}\x1b"}, "api_key"),
    ],
)
async def test_invalid_input_names_the_field(
    start_vault: StartVault,
    connect: Connect,
    ring_v1: MasterKeyRing,
    request_fields: dict[str, str],
    field: str,
) -> None:
    app = await start_vault(ring_v1)
    gateway = connect(app, "gateway")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await gateway.PutKey(kv.PutKeyRequest(**{"user_id": new_user(), **request_fields}))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = from_rpc_error(caught.value)
    assert isinstance(error, InvalidArgument)
    assert error.field == field
    assert PLANTED not in error.message


ALLOWED = {
    "PutKey": {"gateway"},
    "ListKeys": {"gateway"},
    "Decrypt": {"inference"},
    "MarkUsed": {"gateway"},
    # The operator: a cli certificate, or `tzurot admin` inside the gateway pod.
    "RewrapKeys": {"cli", "gateway"},
    "GetRewrapProgress": {"cli", "gateway"},
    "DeleteKey": {"gateway"},
}


def calls(user: str) -> dict[str, Callable[[Stub], Awaitable[Any]]]:
    async def rewrap(stub: Stub) -> list[kv.RewrapKeysResponse]:
        return [reply async for reply in stub.RewrapKeys(kv.RewrapKeysRequest(batch_size=2))]

    return {
        "PutKey": lambda s: s.PutKey(
            kv.PutKeyRequest(user_id=user, provider="openrouter", api_key=PLANTED)
        ),
        "ListKeys": lambda s: s.ListKeys(kv.ListKeysRequest(user_id=user)),
        "Decrypt": lambda s: s.Decrypt(kv.DecryptRequest(user_id=user, provider="openrouter")),
        "MarkUsed": lambda s: s.MarkUsed(kv.MarkUsedRequest(user_id=user, provider="openrouter")),
        "RewrapKeys": rewrap,
        "GetRewrapProgress": lambda s: s.GetRewrapProgress(kv.GetRewrapProgressRequest()),
        "DeleteKey": lambda s: s.DeleteKey(
            kv.DeleteKeyRequest(user_id=user, provider="openrouter")
        ),
    }


async def test_authorization_matrix(
    start_vault: StartVault, connect: Connect, ring_v1: MasterKeyRing
) -> None:
    service = kv.DESCRIPTOR.services_by_name["KeyVaultService"]
    assert {method.name for method in service.methods} == set(ALLOWED)
    app = await start_vault(ring_v1)
    stubs = {identity: connect(app, identity) for identity in SERVICE_IDENTITIES}
    user = new_user()
    results: dict[tuple[str, str], grpc.StatusCode] = {}
    for method, call in calls(user).items():
        for identity, stub in stubs.items():
            try:
                await call(stub)
                results[method, identity] = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                results[method, identity] = exc.code()
    expected = {
        (method, identity): (
            grpc.StatusCode.OK if identity in ALLOWED[method] else grpc.StatusCode.PERMISSION_DENIED
        )
        for method in ALLOWED
        for identity in SERVICE_IDENTITIES
    }
    assert results == expected


async def test_rewrap_over_grpc_while_decrypts_run(
    start_vault: StartVault,
    connect: Connect,
    ring_v1: MasterKeyRing,
    ring_v2: MasterKeyRing,
    vault_url: str,
) -> None:
    old = await start_vault(ring_v1)
    keys = {new_user(): f"rewrap-key-{i:03d}-{uuid.uuid4().hex}" for i in range(30)}
    old_gateway = connect(old, "gateway")
    for user, key in keys.items():
        await old_gateway.PutKey(kv.PutKeyRequest(user_id=user, provider="openai", api_key=key))
    await old.stop()

    new = await start_vault(ring_v2)
    inference, cli = connect(new, "inference"), connect(new, "cli")
    finished = asyncio.Event()
    decrypted = 0

    async def decrypt_all_the_time() -> None:
        nonlocal decrypted
        while not finished.is_set() or decrypted == 0:
            for user, key in keys.items():
                reply = await inference.Decrypt(kv.DecryptRequest(user_id=user, provider="openai"))
                assert reply.api_key == key
                decrypted += 1

    readers = [asyncio.create_task(decrypt_all_the_time()) for _ in range(4)]
    try:
        progress = [r async for r in cli.RewrapKeys(kv.RewrapKeysRequest(batch_size=4))]
    finally:
        finished.set()
    await asyncio.gather(*readers)

    assert [(r.master_key_version, r.total) for r in progress] == [(2, 30)] * len(progress)
    assert [r.rewrapped for r in progress] == [4, 8, 12, 16, 20, 24, 28, 30]
    engine = create_engine(vault_url)
    try:
        async with engine.connect() as conn:
            versions = await conn.scalars(sa.text("select master_key_version from vault.api_keys"))
            assert set(versions) == {2}
    finally:
        await engine.dispose()
    for user, key in keys.items():
        reply = await inference.Decrypt(kv.DecryptRequest(user_id=user, provider="openai"))
        assert reply.api_key == key


@pytest.fixture
def debug_logs() -> Iterator[None]:
    """The production logging pipeline at DEBUG, without the key among its known secrets."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("keyvault", level="DEBUG", fmt="json", secrets=())
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()


@pytest.mark.usefixtures("debug_logs")
async def test_logs_of_a_full_run_hold_no_key(
    start_vault: StartVault,
    connect: Connect,
    ring_v1: MasterKeyRing,
    capfd: pytest.CaptureFixture[str],
) -> None:
    app = await start_vault(ring_v1)
    gateway, inference = connect(app, "gateway"), connect(app, "inference")
    user = new_user()
    await gateway.PutKey(kv.PutKeyRequest(user_id=user, provider="openrouter", api_key=PLANTED))
    await gateway.ListKeys(kv.ListKeysRequest(user_id=user))
    reply = await inference.Decrypt(kv.DecryptRequest(user_id=user, provider="openrouter"))
    assert reply.api_key == PLANTED
    await gateway.MarkUsed(kv.MarkUsedRequest(user_id=user, provider="openrouter"))
    with pytest.raises(grpc.aio.AioRpcError):  # a refusal logs too
        await inference.PutKey(kv.PutKeyRequest(user_id=user, provider="x", api_key=PLANTED))
    with pytest.raises(grpc.aio.AioRpcError):  # and so does a rejected key
        await gateway.PutKey(kv.PutKeyRequest(user_id=user, provider="x", api_key=PLANTED + " "))
    await gateway.DeleteKey(kv.DeleteKeyRequest(user_id=user, provider="openrouter"))
    await app.stop()

    out, err = capfd.readouterr()
    logs = out + err
    assert "rpc.served" in logs
    assert "key stored" in logs
    assert PLANTED not in logs
    assert PLANTED[:12] not in logs
    assert PLANTED[-12:] not in logs
