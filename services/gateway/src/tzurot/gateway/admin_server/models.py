"""Model choice RPCs: the user's per personality, their default, a channel's; the effective
config with every level that holds one."""

from __future__ import annotations

from tzurot.gateway import admin_convert as ac
from tzurot.gateway import convert
from tzurot.gateway.admin import SettingTarget
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.domain import ConfigSource
from tzurot.gateway.server import Context
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw


def _target(
    request: gw.SetModelOverrideRequest | gw.ResetModelOverrideRequest,
) -> SettingTarget:
    scope = (
        ConfigSource.USER_PERSONALITY
        if request.scope == common.CONFIG_SOURCE_UNSPECIFIED
        else ac.config_source(request.scope)
    )
    return SettingTarget(
        scope,
        request.personality,
        convert.location(request.location),
        manage_channels=request.manage_channels,
    )


class ModelRpcs(AdminRpcs):
    async def SetModelOverride(
        self, request: gw.SetModelOverrideRequest, context: Context
    ) -> gw.SetModelOverrideResponse:
        effective = await self._admin.set_model(
            await self._who(request), _target(request), request.config_id
        )
        return gw.SetModelOverrideResponse(effective=ac.resolved_config(effective))

    async def ResetModelOverride(
        self, request: gw.ResetModelOverrideRequest, context: Context
    ) -> gw.ResetModelOverrideResponse:
        effective = await self._admin.reset_model(await self._who(request), _target(request))
        if effective is None:
            return gw.ResetModelOverrideResponse()
        return gw.ResetModelOverrideResponse(effective=ac.resolved_config(effective))

    async def GetEffectiveConfig(
        self, request: gw.GetEffectiveConfigRequest, context: Context
    ) -> gw.GetEffectiveConfigResponse:
        levels = await self._admin.config_levels(
            await self._who(request), request.personality, convert.location(request.location)
        )
        return gw.GetEffectiveConfigResponse(
            effective=ac.resolved_config(levels[0]),
            levels=[ac.resolved_config(level) for level in levels],
        )
