"""The admin RPCs of GatewayService: thin handlers over `Admin` (admin.py)."""

from __future__ import annotations

from typing import Any

from tzurot.gateway import admin_convert as ac
from tzurot.gateway import convert
from tzurot.gateway.admin import Admin, Principal, SettingTarget
from tzurot.gateway.server import Context, GatewayServicer
from tzurot.gateway.service import Gateway
from tzurot.gateway.wallet import Wallet
from tzurot.runtime.identity import current_caller
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem


class GatewayAdminServicer(GatewayServicer):
    """GatewayService: conversation, personalities and wallet (GatewayServicer) plus admin."""

    def __init__(self, gateway: Gateway, wallet: Wallet, admin: Admin) -> None:
        super().__init__(gateway, wallet)
        self._admin = admin

    async def _who(self, request: Any) -> Principal:
        actor = (
            convert.actor(request.actor)
            if request.HasField("actor") and request.actor.user_id
            else None
        )
        return await self._admin.principal(actor, current_caller())

    async def ResolveMentions(
        self, request: gw.ResolveMentionsRequest, context: Context
    ) -> gw.ResolveMentionsResponse:
        found = await self._admin.resolve_mentions(
            await self._who(request), request.content, request.limit
        )
        return gw.ResolveMentionsResponse(
            mentions=[
                gw.Mention(personality=convert.personality(p), matched_text=text, offset=offset)
                for p, text, offset in found
            ]
        )

    # ---- personalities ----

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
        await self._admin.remove_alias(await self._who(request), request.alias)
        return gw.RemoveAliasResponse()

    # ---- users and personas ----

    async def GetUser(self, request: gw.GetUserRequest, context: Context) -> gw.GetUserResponse:
        who = await self._who(request)
        return gw.GetUserResponse(user=ac.user(who.require_user()))

    async def SetTimezone(
        self, request: gw.SetTimezoneRequest, context: Context
    ) -> gw.SetTimezoneResponse:
        user = await self._admin.set_timezone(await self._who(request), request.timezone)
        return gw.SetTimezoneResponse(user=ac.user(user))

    async def VerifyNsfw(
        self, request: gw.VerifyNsfwRequest, context: Context
    ) -> gw.VerifyNsfwResponse:
        user = await self._admin.verify_nsfw(
            await self._who(request), convert.location(request.location)
        )
        return gw.VerifyNsfwResponse(user=ac.user(user))

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

    # ---- LLM configs and overrides ----

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

    async def SetModelOverride(
        self, request: gw.SetModelOverrideRequest, context: Context
    ) -> gw.SetModelOverrideResponse:
        effective = await self._admin.set_model_override(
            await self._who(request), request.personality, request.config_id
        )
        return gw.SetModelOverrideResponse(effective=ac.resolved_config(effective))

    async def ResetModelOverride(
        self, request: gw.ResetModelOverrideRequest, context: Context
    ) -> gw.ResetModelOverrideResponse:
        effective = await self._admin.reset_model_override(
            await self._who(request), request.personality
        )
        return gw.ResetModelOverrideResponse(effective=ac.resolved_config(effective))

    async def GetEffectiveConfig(
        self, request: gw.GetEffectiveConfigRequest, context: Context
    ) -> gw.GetEffectiveConfigResponse:
        effective = await self._admin.effective_config(
            await self._who(request), request.personality
        )
        return gw.GetEffectiveConfigResponse(effective=ac.resolved_config(effective))

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
        )
        setting = await self._admin.reset_setting(await self._who(request), target, request.key)
        return gw.ResetSettingResponse(setting=ac.resolved_setting(setting))

    # ---- usage ----

    async def GetUsage(self, request: gw.GetUsageRequest, context: Context) -> gw.GetUsageResponse:
        totals, since = await self._admin.usage(
            await self._who(request), ac.usage_period(request.period), all_users=request.all_users
        )
        return gw.GetUsageResponse(
            totals=[ac.usage_total(u, with_user=request.all_users) for u in totals],
            since=convert.timestamp(since),
        )

    # ---- channels ----

    async def ActivateChannel(
        self, request: gw.ActivateChannelRequest, context: Context
    ) -> gw.ActivateChannelResponse:
        activation = await self._admin.activate_channel(
            await self._who(request), convert.location(request.location), request.personality
        )
        return gw.ActivateChannelResponse(activation=ac.activation(activation))

    async def DeactivateChannel(
        self, request: gw.DeactivateChannelRequest, context: Context
    ) -> gw.DeactivateChannelResponse:
        await self._admin.deactivate_channel(
            await self._who(request), convert.location(request.location)
        )
        return gw.DeactivateChannelResponse()

    async def GetChannelActivation(
        self, request: gw.GetChannelActivationRequest, context: Context
    ) -> gw.GetChannelActivationResponse:
        activation = await self._admin.channel_activation(convert.location(request.location))
        if activation is None:
            return gw.GetChannelActivationResponse()
        return gw.GetChannelActivationResponse(activation=ac.activation(activation))

    # ---- history and memory ----

    async def ClearHistory(
        self, request: gw.ClearHistoryRequest, context: Context
    ) -> gw.ClearHistoryResponse:
        deleted = await self._admin.clear_history(
            await self._who(request), convert.location(request.location), request.personality
        )
        return gw.ClearHistoryResponse(deleted_turns=deleted)

    async def UndoLastExchange(
        self, request: gw.UndoLastExchangeRequest, context: Context
    ) -> gw.UndoLastExchangeResponse:
        removed = await self._admin.undo_last_exchange(
            await self._who(request), convert.location(request.location), request.personality
        )
        return gw.UndoLastExchangeResponse(removed=[ac.turn(t) for t in removed])

    async def DeleteExchange(
        self, request: gw.DeleteExchangeRequest, context: Context
    ) -> gw.DeleteExchangeResponse:
        removed = await self._admin.delete_exchange(await self._who(request), request.message_id)
        return gw.DeleteExchangeResponse(removed=[ac.turn(t) for t in removed])

    async def SearchMemories(
        self, request: gw.SearchMemoriesRequest, context: Context
    ) -> gw.SearchMemoriesResponse:
        reply = await self._admin.search_memories(
            await self._who(request), request.personality, request.query, request.limit
        )
        return gw.SearchMemoriesResponse(memories=list(reply.memories))

    async def PruneMemories(
        self, request: gw.PruneMemoriesRequest, context: Context
    ) -> gw.PruneMemoriesResponse:
        reply = await self._admin.prune_memories(
            await self._who(request), request.personality, request.threshold
        )
        return gw.PruneMemoriesResponse(deleted=reply.deleted)

    async def GetMemoryStats(
        self, request: gw.GetMemoryStatsRequest, context: Context
    ) -> gw.GetMemoryStatsResponse:
        reply: mem.CountMemoriesResponse = await self._admin.memory_stats(
            await self._who(request), request.personality
        )
        return gw.GetMemoryStatsResponse(
            total=reply.total,
            sectors=[gw.SectorCount(sector=s.sector, count=s.count) for s in reply.sectors],
            oldest=reply.oldest if reply.HasField("oldest") else None,
            newest=reply.newest if reply.HasField("newest") else None,
        )

    # ---- denylist ----

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

    # ---- privacy ----

    async def ExportUserData(
        self, request: gw.ExportUserDataRequest, context: Context
    ) -> gw.ExportUserDataResponse:
        archive, filename = await self._admin.export_user_data(await self._who(request))
        return gw.ExportUserDataResponse(archive=archive, filename=filename)

    async def DeleteUserData(
        self, request: gw.DeleteUserDataRequest, context: Context
    ) -> gw.DeleteUserDataResponse:
        deleted = await self._admin.delete_user_data(await self._who(request))
        return gw.DeleteUserDataResponse(deleted_rows=deleted)
