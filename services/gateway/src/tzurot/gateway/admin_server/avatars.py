"""SetAvatar and GetAvatar (the edge serves the latter publicly as GET /avatars/{file})."""

from __future__ import annotations

from google.api import httpbody_pb2  # type: ignore[import-untyped]  # no stubs

from tzurot.gateway import convert
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


class AvatarRpcs(AdminRpcs):
    async def SetAvatar(
        self, request: gw.SetAvatarRequest, context: Context
    ) -> gw.SetAvatarResponse:
        updated = await self._admin.set_avatar(
            await self._who(request), request.personality, request.image
        )
        return gw.SetAvatarResponse(personality=convert.personality(updated))

    async def GetAvatar(
        self, request: gw.GetAvatarRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        content_type, data = await self._admin.get_avatar(request.file)
        return httpbody_pb2.HttpBody(content_type=content_type, data=data)
