"""Configs and settings: LLM configs, a user's model override per personality, the effective
config, and the settings cascade (read, set and reset at each level)."""

from __future__ import annotations

from typing import Any

from tzurot.gateway import settings as cascade
from tzurot.gateway.admin.base import (
    MAX_NAME,
    AdminBase,
    Principal,
    SettingTarget,
    limit_text,
    managed_channel,
    require,
)
from tzurot.gateway.domain import ConfigSource, LlmConfig, Location
from tzurot.runtime.errors import InvalidArgument, PermissionDenied, quoted


class ConfigAdmin(AdminBase):
    async def create_llm_config(self, who: Principal, c: LlmConfig, *, global_: bool) -> LlmConfig:
        if global_ and not who.superuser:
            raise PermissionDenied("only superusers may create global configs")
        if not global_:
            who.require_user()
        name = require("config.name", c.name, MAX_NAME)
        provider = require("config.provider", c.provider, 64)
        model = require("config.model", c.model, 200)
        if c.context_window < 0:
            raise InvalidArgument("config.context_window", "context_window is negative")
        if c.max_referenced_messages < 0:
            raise InvalidArgument("config.max_referenced_messages", "it is negative")
        if c.free_use and not who.superuser:
            raise PermissionDenied("only superusers may mark a config free to use")
        return await self._db.create_llm_config(
            {
                "name": name,
                "provider": provider,
                "model": model,
                "owner_user_id": None if global_ else who.user_id,
                "advanced_parameters": dict(c.advanced_parameters),
                "context_window": c.context_window,
                "max_referenced_messages": c.max_referenced_messages,
                "free_use": c.free_use,
                "description": limit_text("config.description", c.description, 2000),
            }
        )

    async def list_llm_configs(self, who: Principal) -> list[LlmConfig]:
        return await self._db.list_llm_configs(who.user_id)

    async def delete_llm_config(self, who: Principal, config_id: str) -> None:
        config = await self._usable_config(who, config_id, "config_id")
        if config.owner_user_id != who.user_id and not who.superuser:
            raise PermissionDenied("only superusers may delete global configs")
        await self._db.delete_llm_config(config.id)

    # ---- settings ----

    async def get_settings(
        self, who: Principal, name: str, where: Location
    ) -> list[cascade.ResolvedSetting]:
        personality = await self._personality(name, who) if name.strip() else None
        resolved = await self._gateway.resolved_settings(who.user, personality, where)
        return list(resolved.values())

    async def _setting_ids(self, who: Principal, target: SettingTarget) -> dict[str, str]:
        scope, name, where = target.scope, target.personality, target.location
        if scope is ConfigSource.GLOBAL:
            if not who.superuser:
                raise PermissionDenied("only superusers may change global settings")
            return {}
        if scope is ConfigSource.PERSONALITY:
            return {"personality_id": (await self._owned(name, who)).id}
        if scope is ConfigSource.CHANNEL:
            return {"channel_id": managed_channel(who, where, target.manage_channels)}
        if scope is ConfigSource.USER:
            return {"user_id": who.require_user().id}
        if scope is ConfigSource.USER_PERSONALITY:
            user = who.require_user()
            return {"user_id": user.id, "personality_id": (await self._personality(name, who)).id}
        raise InvalidArgument(
            "scope", "scope is GLOBAL, PERSONALITY, CHANNEL, USER or USER_PERSONALITY"
        )

    async def set_setting(
        self, who: Principal, target: SettingTarget, key: str, value: Any
    ) -> cascade.ResolvedSetting:
        checked = cascade.validate(key, value)
        cascade.check_scope(key, target.scope)
        ids = await self._setting_ids(who, target)
        await self._db.set_setting(target.scope, ids, key, checked)
        return cascade.ResolvedSetting(key, checked, target.scope)

    async def reset_setting(
        self, who: Principal, target: SettingTarget, key: str
    ) -> cascade.ResolvedSetting:
        name, where = target.personality, target.location
        if key not in cascade.SPECS:
            raise InvalidArgument("key", f"unknown setting {quoted(key)}")
        ids = await self._setting_ids(who, target)
        await self._db.reset_setting(target.scope, ids, key)
        personality = await self._personality(name, who) if name.strip() else None
        resolved = await self._gateway.resolved_settings(who.user, personality, where)
        return resolved[key]
