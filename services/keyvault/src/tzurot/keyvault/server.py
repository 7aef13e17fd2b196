"""KeyVaultService over gRPC: thin. Convert the request, call the use-case, convert the reply.

Domain errors (tzurot.runtime.errors) propagate to the runtime's interceptor, which maps
them to rich statuses. Authorization per method is the server's policy (see app.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
from pydantic import SecretStr

from tzurot.keyvault import convert
from tzurot.keyvault.service import KeyVault
from tzurot.v1 import keyvault_pb2 as kv
from tzurot.v1 import keyvault_pb2_grpc as kv_grpc

Context = grpc.aio.ServicerContext[object, object]


class KeyVaultServicer(kv_grpc.KeyVaultServiceServicer):
    def __init__(self, vault: KeyVault) -> None:
        self._vault = vault

    async def PutKey(self, request: kv.PutKeyRequest, context: Context) -> kv.PutKeyResponse:
        record = await self._vault.put_key(
            request.user_id, request.provider, SecretStr(request.api_key)
        )
        return kv.PutKeyResponse(record=convert.key_record(record))

    async def DeleteKey(
        self, request: kv.DeleteKeyRequest, context: Context
    ) -> kv.DeleteKeyResponse:
        deleted = await self._vault.delete_key(request.user_id, request.provider)
        return kv.DeleteKeyResponse(deleted=deleted)

    async def ListKeys(self, request: kv.ListKeysRequest, context: Context) -> kv.ListKeysResponse:
        records = await self._vault.list_keys(request.user_id)
        return kv.ListKeysResponse(records=[convert.key_record(r) for r in records])

    async def Decrypt(self, request: kv.DecryptRequest, context: Context) -> kv.DecryptResponse:
        api_key = await self._vault.decrypt(request.user_id, request.provider)
        return kv.DecryptResponse(api_key=api_key.get_secret_value())

    async def MarkUsed(self, request: kv.MarkUsedRequest, context: Context) -> kv.MarkUsedResponse:
        if request.user_id or request.provider or not request.uses:
            await self._vault.mark_used(request.user_id, request.provider)
        if request.uses:
            await self._vault.record_uses(convert.key_uses(request, datetime.now(UTC)))
        return kv.MarkUsedResponse()

    async def GetRewrapProgress(
        self, request: kv.GetRewrapProgressRequest, context: Context
    ) -> kv.GetRewrapProgressResponse:
        status = await self._vault.rewrap_status()
        return kv.GetRewrapProgressResponse(
            master_key_version=status.master_key_version,
            stale=status.total - status.rewrapped,
            total=status.total,
        )

    async def RewrapKeys(
        self, request: kv.RewrapKeysRequest, context: Context
    ) -> AsyncIterator[kv.RewrapKeysResponse]:
        async for progress in self._vault.rewrap(request.batch_size):
            yield convert.rewrap_progress(progress)
