"""Which model answers: a user's choice toward one personality, a user's default for every
personality, a channel's for everyone there (resolve.py orders the levels)."""

from __future__ import annotations

from tzurot.gateway.admin.base import AdminBase, Principal, SettingTarget, managed_channel
from tzurot.gateway.domain import ConfigSource, Location, Personality, ResolvedConfig
from tzurot.runtime.errors import InvalidArgument

CHOSEN_LEVELS = (ConfigSource.USER_PERSONALITY, ConfigSource.USER, ConfigSource.CHANNEL)


class ModelAdmin(AdminBase):
    async def set_model(
        self, who: Principal, target: SettingTarget, config_id: str
    ) -> ResolvedConfig:
        """Chooses `config_id` at the target's level; the reply is the personality's effective
        config there (or the config itself when no personality is named)."""
        config = await self._usable_config(who, config_id, "config_id")
        scope, where = target.scope, target.location
        if scope is ConfigSource.USER_PERSONALITY:
            user = who.require_user()
            personality = await self._personality(target.personality, who)
            await self._db.set_override(user.id, personality.id, config.id)
        elif scope is ConfigSource.USER:
            await self._db.set_user_model(who.require_user().id, config.id)
        elif scope is ConfigSource.CHANNEL:
            channel_id = managed_channel(who, where, target.manage_channels)
            if config.owner_user_id is not None:
                raise InvalidArgument(
                    "config_id",
                    f"{config.name} is a personal config; a channel's model is a shared "
                    "config (one of `/llm-config list` without an owner), so everyone there "
                    "can use it",
                    reason="CHANNEL_CONFIG_NOT_SHARED",
                )
            await self._db.set_channel_model(channel_id, config.id, who.user_id)
        else:
            raise _bad_scope()
        if not target.personality.strip():
            return ResolvedConfig(config, scope)
        return await self._effective(who, target.personality, where)

    async def reset_model(self, who: Principal, target: SettingTarget) -> ResolvedConfig | None:
        """Forgets the choice at the target's level; the personality's effective config
        there, or None when no personality is named."""
        scope, where = target.scope, target.location
        if scope is ConfigSource.USER_PERSONALITY:
            user = who.require_user()
            personality = await self._personality(target.personality, who)
            await self._db.reset_override(user.id, personality.id)
        elif scope is ConfigSource.USER:
            await self._db.reset_user_model(who.require_user().id)
        elif scope is ConfigSource.CHANNEL:
            await self._db.reset_channel_model(managed_channel(who, where, target.manage_channels))
        else:
            raise _bad_scope()
        if not target.personality.strip():
            return None
        return await self._effective(who, target.personality, where)

    async def config_levels(
        self, who: Principal, name: str, where: Location
    ) -> list[ResolvedConfig]:
        """Every level holding a config for `who` talking to `name` at `where`, the winner
        first."""
        personality = await self._personality(name, who)
        return await self._gateway.config_levels(personality, who.user, where.conversation_id)

    async def _effective(self, who: Principal, name: str, where: Location) -> ResolvedConfig:
        personality: Personality = await self._personality(name, who)
        return await self._gateway.effective_config(personality, who.user, where.conversation_id)


def _bad_scope() -> InvalidArgument:
    return InvalidArgument(
        "scope",
        "a model is chosen for you toward one personality (USER_PERSONALITY), as your "
        "default (USER) or for a channel (CHANNEL)",
    )
