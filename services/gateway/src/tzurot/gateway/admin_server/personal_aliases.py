"""A user's own alias RPCs (`/alias add|remove|list`)."""

from __future__ import annotations

from tzurot.gateway import convert
from tzurot.gateway.admin.personal_aliases import PersonalAlias
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


def _alias(a: PersonalAlias) -> gw.PersonalAlias:
    return gw.PersonalAlias(
        alias=a.alias, personality=convert.personality(a.personality), shadows=a.shadows
    )


class PersonalAliasRpcs(AdminRpcs):
    async def AddPersonalAlias(
        self, request: gw.AddPersonalAliasRequest, context: Context
    ) -> gw.AddPersonalAliasResponse:
        added = await self._admin.add_personal_alias(
            await self._who(request), request.personality, request.alias
        )
        return gw.AddPersonalAliasResponse(alias=_alias(added))

    async def RemovePersonalAlias(
        self, request: gw.RemovePersonalAliasRequest, context: Context
    ) -> gw.RemovePersonalAliasResponse:
        await self._admin.remove_personal_alias(await self._who(request), request.alias)
        return gw.RemovePersonalAliasResponse()

    async def ListPersonalAliases(
        self, request: gw.ListPersonalAliasesRequest, context: Context
    ) -> gw.ListPersonalAliasesResponse:
        listed = await self._admin.list_personal_aliases(await self._who(request))
        return gw.ListPersonalAliasesResponse(aliases=[_alias(a) for a in listed])
