"""Privacy RPCs: export and delete a user's data."""

from __future__ import annotations

from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


class PrivacyRpcs(AdminRpcs):
    async def ExportUserData(
        self, request: gw.ExportUserDataRequest, context: Context
    ) -> gw.ExportUserDataResponse:
        exported = await self._admin.export_user_data(
            await self._who(request), part=request.part or 1
        )
        return gw.ExportUserDataResponse(
            archive=exported.archive,
            filename=exported.filename,
            part=exported.part,
            parts=exported.parts,
        )

    async def DeleteUserData(
        self, request: gw.DeleteUserDataRequest, context: Context
    ) -> gw.DeleteUserDataResponse:
        deleted = await self._admin.delete_user_data(await self._who(request))
        return gw.DeleteUserDataResponse(deleted_rows=deleted)
