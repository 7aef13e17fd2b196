"""User and persona RPCs."""

from __future__ import annotations

from tzurot.gateway import admin_convert as ac
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


class UserRpcs(AdminRpcs):
    async def GetUser(self, request: gw.GetUserRequest, context: Context) -> gw.GetUserResponse:
        who = await self._who(request)
        return gw.GetUserResponse(user=ac.user(who.require_user()))

    async def SetTimezone(
        self, request: gw.SetTimezoneRequest, context: Context
    ) -> gw.SetTimezoneResponse:
        user = await self._admin.set_timezone(await self._who(request), request.timezone)
        return gw.SetTimezoneResponse(user=ac.user(user))

    async def SetPersona(
        self, request: gw.SetPersonaRequest, context: Context
    ) -> gw.SetPersonaResponse:
        persona = await self._admin.set_persona(
            await self._who(request), request.personality, ac.persona_in(request.persona)
        )
        return gw.SetPersonaResponse(persona=ac.persona(persona))

    async def GetPersona(
        self, request: gw.GetPersonaRequest, context: Context
    ) -> gw.GetPersonaResponse:
        persona, is_override = await self._admin.get_persona(
            await self._who(request), request.personality
        )
        return gw.GetPersonaResponse(persona=ac.persona(persona), is_override=is_override)
