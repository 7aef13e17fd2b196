"""KeyVaultService conformance: who may call what, status codes, idempotency, rewrap stream.

Runs against any implementation (see tests/conformance/conftest.py and docs/CONTRACTS.md).
"""

from __future__ import annotations

import uuid

import grpc
import pytest

from tzurot.testing.conformance.authz import check_matrix
from tzurot.testing.conformance.target import Target
from tzurot.v1 import keyvault_pb2 as kv

SERVICE = "keyvault"
pytestmark = [pytest.mark.conformance, pytest.mark.asyncio(loop_scope="session")]


SOMEONE = str(uuid.uuid4())


def user() -> str:
    """A fresh user: keyvault's user ids are gateway's internal ids, UUIDs."""
    return str(uuid.uuid4())


async def test_authorization_matrix(target: Target) -> None:
    assert await check_matrix(target) == []


async def test_a_stored_key_is_listed_without_the_key_and_decrypts_for_inference(
    target: Target,
) -> None:
    who, secret = user(), f"sk-conformance-{uuid.uuid4().hex}"
    gateway, inference = target.stub("gateway"), target.stub("inference")
    put = await gateway.PutKey(kv.PutKeyRequest(user_id=who, provider="openrouter", api_key=secret))
    listed = await gateway.ListKeys(kv.ListKeysRequest(user_id=who))
    decrypted = await inference.Decrypt(kv.DecryptRequest(user_id=who, provider="openrouter"))
    assert put.record.provider == "openrouter"
    assert put.record.hint == secret[-4:]
    assert put.record.master_key_version >= 1
    (record,) = listed.records
    assert (record.user_id, record.provider, record.hint) == (who, "openrouter", secret[-4:])
    assert secret not in str(listed)
    assert decrypted.api_key == secret


async def test_put_replaces_and_delete_is_idempotent(target: Target) -> None:
    who = user()
    gateway, inference = target.stub("gateway"), target.stub("inference")
    for secret in ("sk-first-key-1111", "sk-second-key-2222"):
        await gateway.PutKey(kv.PutKeyRequest(user_id=who, provider="openai", api_key=secret))
    listed = await gateway.ListKeys(kv.ListKeysRequest(user_id=who))
    decrypted = await inference.Decrypt(kv.DecryptRequest(user_id=who, provider="openai"))
    first = await gateway.DeleteKey(kv.DeleteKeyRequest(user_id=who, provider="openai"))
    second = await gateway.DeleteKey(kv.DeleteKeyRequest(user_id=who, provider="openai"))
    assert [r.hint for r in listed.records] == ["2222"]
    assert decrypted.api_key == "sk-second-key-2222"
    assert (first.deleted, second.deleted) == (True, False)
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await inference.Decrypt(kv.DecryptRequest(user_id=who, provider="openai"))
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "request_",
    [
        kv.PutKeyRequest(user_id="", provider="openrouter", api_key="sk-x-123456"),
        kv.PutKeyRequest(user_id="not-a-uuid", provider="openrouter", api_key="sk-x-123456"),
        kv.PutKeyRequest(user_id=SOMEONE, provider="", api_key="sk-x-123456"),
        kv.PutKeyRequest(user_id=SOMEONE, provider="openrouter", api_key=""),
    ],
    ids=["no user", "user not a UUID", "no provider", "no key"],
)
async def test_bad_put_is_invalid_argument(target: Target, request_: kv.PutKeyRequest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await target.stub("gateway").PutKey(request_)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "sk-x-123456" not in (refused.value.details() or "")


async def test_mark_used_sets_last_used(target: Target) -> None:
    who = user()
    gateway = target.stub("gateway")
    await gateway.PutKey(kv.PutKeyRequest(user_id=who, provider="gemini", api_key="sk-g-98765"))
    await gateway.MarkUsed(kv.MarkUsedRequest(user_id=who, provider="gemini"))
    (record,) = (await gateway.ListKeys(kv.ListKeysRequest(user_id=who))).records
    assert record.HasField("last_used_at")


async def test_rewrap_streams_progress_in_order_and_ends_complete(target: Target) -> None:
    gateway = target.stub("gateway")
    for _ in range(3):
        await gateway.PutKey(
            kv.PutKeyRequest(user_id=user(), provider="openai", api_key="sk-r-1234")
        )
    steps = [
        step async for step in target.stub("cli").RewrapKeys(kv.RewrapKeysRequest(batch_size=1))
    ]
    assert steps, "RewrapKeys streams at least one progress message"
    done = [step.rewrapped for step in steps]
    assert done == sorted(done)
    assert steps[-1].rewrapped == steps[-1].total
    assert {step.master_key_version for step in steps} == {steps[-1].master_key_version}
    progress = await target.stub("cli").GetRewrapProgress(kv.GetRewrapProgressRequest())
    assert progress.master_key_version == steps[-1].master_key_version
    assert progress.stale == 0
    assert progress.total >= 3
