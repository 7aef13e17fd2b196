"""Personality and alias RPCs, and ResolveMentions."""

from __future__ import annotations

from tzurot.gateway import admin_convert as ac
from tzurot.gateway import convert
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


class PersonalityRpcs(AdminRpcs):
    async def ResolveMentions(
        self, request: gw.ResolveMentionsRequest, context: Context
    ) -> gw.ResolveMentionsResponse:
        # Answered for a user whose data is being deleted too: their message then reaches
        # Generate, whose refusal the bot shows (admin/deletions.py).
        found = await self._admin.resolve_mentions(
            await self._who(request, refuse_if_deleting=False), request.content, request.limit
        )
        return gw.ResolveMentionsResponse(
            mentions=[
                gw.Mention(personality=convert.personality(p), matched_text=text, offset=offset)
                for p, text, offset in found
            ]
        )

    async def ListPersonalities(
        self, request: gw.ListPersonalitiesRequest, context: Context
    ) -> gw.ListPersonalitiesResponse:
        owner = (await self._who(request)).user_id or "" if request.owned_only else None
        return await self._list_personalities(request, owned_by=owner)

    async def CreatePersonality(
        self, request: gw.CreatePersonalityRequest, context: Context
    ) -> gw.CreatePersonalityResponse:
        created = await self._admin.create_personality(
            await self._who(request), ac.personality_in(request.personality)
        )
        return gw.CreatePersonalityResponse(personality=convert.personality(created))

    async def UpdatePersonality(
        self, request: gw.UpdatePersonalityRequest, context: Context
    ) -> gw.UpdatePersonalityResponse:
        updated = await self._admin.update_personality(
            await self._who(request),
            ac.personality_in(request.personality),
            list(request.update_paths),
        )
        return gw.UpdatePersonalityResponse(personality=convert.personality(updated))

    async def DeletePersonality(
        self, request: gw.DeletePersonalityRequest, context: Context
    ) -> gw.DeletePersonalityResponse:
        await self._admin.delete_personality(await self._who(request), request.personality)
        return gw.DeletePersonalityResponse()

    async def AddAlias(self, request: gw.AddAliasRequest, context: Context) -> gw.AddAliasResponse:
        updated = await self._admin.add_alias(
            await self._who(request), request.personality, request.alias
        )
        return gw.AddAliasResponse(personality=convert.personality(updated))

    async def RemoveAlias(
        self, request: gw.RemoveAliasRequest, context: Context
    ) -> gw.RemoveAliasResponse:
        await self._admin.remove_alias(await self._who(request), request.alias, request.personality)
        return gw.RemoveAliasResponse()
