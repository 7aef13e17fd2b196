"""LLM config and settings RPCs."""

from __future__ import annotations

from tzurot.gateway import admin_convert as ac
from tzurot.gateway import convert
from tzurot.gateway.admin import SettingTarget
from tzurot.gateway.admin_server.base import AdminRpcs
from tzurot.gateway.server import Context
from tzurot.v1 import gateway_pb2 as gw


class ConfigRpcs(AdminRpcs):
    async def CreateLlmConfig(
        self, request: gw.CreateLlmConfigRequest, context: Context
    ) -> gw.CreateLlmConfigResponse:
        config = await self._admin.create_llm_config(
            await self._who(request),
            ac.llm_config_in(request.config),
            global_=bool(getattr(request, "global")),  # a Python keyword as a field name
        )
        return gw.CreateLlmConfigResponse(config=convert.llm_config(config))

    async def ListLlmConfigs(
        self, request: gw.ListLlmConfigsRequest, context: Context
    ) -> gw.ListLlmConfigsResponse:
        configs = await self._admin.list_llm_configs(await self._who(request))
        return gw.ListLlmConfigsResponse(configs=[convert.llm_config(c) for c in configs])

    async def DeleteLlmConfig(
        self, request: gw.DeleteLlmConfigRequest, context: Context
    ) -> gw.DeleteLlmConfigResponse:
        await self._admin.delete_llm_config(await self._who(request), request.config_id)
        return gw.DeleteLlmConfigResponse()

    # ---- settings ----

    async def GetSettings(
        self, request: gw.GetSettingsRequest, context: Context
    ) -> gw.GetSettingsResponse:
        settings = await self._admin.get_settings(
            await self._who(request), request.personality, convert.location(request.location)
        )
        return gw.GetSettingsResponse(settings=[ac.resolved_setting(s) for s in settings])

    async def SetSetting(
        self, request: gw.SetSettingRequest, context: Context
    ) -> gw.SetSettingResponse:
        target = SettingTarget(
            ac.config_source(request.scope),
            request.personality,
            convert.location(request.location),
            manage_channels=request.manage_channels,
        )
        setting = await self._admin.set_setting(
            await self._who(request), target, request.key, ac.value_in(request.value)
        )
        return gw.SetSettingResponse(setting=ac.resolved_setting(setting))

    async def ResetSetting(
        self, request: gw.ResetSettingRequest, context: Context
    ) -> gw.ResetSettingResponse:
        target = SettingTarget(
            ac.config_source(request.scope),
            request.personality,
            convert.location(request.location),
            manage_channels=request.manage_channels,
        )
        setting = await self._admin.reset_setting(await self._who(request), target, request.key)
        return gw.ResetSettingResponse(setting=ac.resolved_setting(setting))
