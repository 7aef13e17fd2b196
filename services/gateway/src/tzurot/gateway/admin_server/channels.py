"""Channel activation and denylist (moderation) RPCs."""

from __future__ import annotations

from tzurot.gateway import admin_convert as ac
from tzurot.gateway import convert
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


class ChannelRpcs(AdminRpcs):
    async def ActivateChannel(
        self, request: gw.ActivateChannelRequest, context: Context
    ) -> gw.ActivateChannelResponse:
        activation = await self._admin.activate_channel(
            await self._who(request),
            convert.location(request.location),
            request.personality,
            manage_channels=request.manage_channels,
        )
        return gw.ActivateChannelResponse(activation=ac.activation(activation))

    async def DeactivateChannel(
        self, request: gw.DeactivateChannelRequest, context: Context
    ) -> gw.DeactivateChannelResponse:
        await self._admin.deactivate_channel(
            await self._who(request),
            convert.location(request.location),
            request.personality,
            manage_channels=request.manage_channels,
        )
        return gw.DeactivateChannelResponse()

    async def GetChannelActivation(
        self, request: gw.GetChannelActivationRequest, context: Context
    ) -> gw.GetChannelActivationResponse:
        activation = await self._admin.channel_activation(convert.location(request.location))
        if activation is None:
            return gw.GetChannelActivationResponse()
        return gw.GetChannelActivationResponse(activation=ac.activation(activation))

    async def AddDenylistEntry(
        self, request: gw.AddDenylistEntryRequest, context: Context
    ) -> gw.AddDenylistEntryResponse:
        entry = await self._admin.add_deny(
            await self._who(request), ac.deny_entry_in(request.entry)
        )
        return gw.AddDenylistEntryResponse(entry=ac.deny_entry(entry))

    async def RemoveDenylistEntry(
        self, request: gw.RemoveDenylistEntryRequest, context: Context
    ) -> gw.RemoveDenylistEntryResponse:
        await self._admin.remove_deny(await self._who(request), request.entry_id)
        return gw.RemoveDenylistEntryResponse()

    async def ListDenylist(
        self, request: gw.ListDenylistRequest, context: Context
    ) -> gw.ListDenylistResponse:
        entries = await self._admin.list_deny(await self._who(request))
        return gw.ListDenylistResponse(entries=[ac.deny_entry(e) for e in entries])
