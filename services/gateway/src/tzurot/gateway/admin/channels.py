"""Channels and moderation: personalities activated in a channel, and the denylist."""

from __future__ import annotations

from tzurot.gateway.admin.base import (
    AdminBase,
    Principal,
    limit_text,
    managed_channel,
    require,
)
from tzurot.gateway.domain import ChannelActivation, DenyEntry, DenyScope, DenyTarget, Location
from tzurot.gateway.ids import is_snowflake, is_uuid
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied, quoted

DISCORD_ID_SCOPES = {DenyScope.GUILD: "server", DenyScope.CHANNEL: "channel"}
"""The scopes named by a Discord id, and what that id is of."""


def discord_id(field: str, value: str, of: str) -> str:
    """`value` when it is a Discord id (`is_snowflake`); else INVALID_ARGUMENT saying what one
    is. A denylist entry is matched by the id as text: stored otherwise, it would match
    nothing, ever. The message speaks of the value, not of `field` (the BadRequest's): a
    Discord user typed it in an option of another name (the bot names that)."""
    if not is_snowflake(value):
        raise InvalidArgument(
            field,
            f"{quoted(value)} is not a Discord {of} id: one is digits only, at most 20 and "
            "not starting with 0 (like 123456789012345678)",
        )
    return value


class ChannelAdmin(AdminBase):
    async def activate_channel(
        self, who: Principal, where: Location, name: str, *, manage_channels: bool
    ) -> ChannelActivation:
        """Adds the personality to the channel (several make a group channel); activating
        one that is already there changes nothing. Needs Manage Channels (`managed_channel`)."""
        channel_id = require("location.channel_id", where.channel_id)
        managed_channel(who, where, manage_channels)
        personality = await self._personality(name, who)
        await self._db.activate(where.guild_id, channel_id, personality.id, who.user_id)
        activation = await self._db.get_activation(channel_id, personality.id)
        assert activation is not None
        return activation

    async def deactivate_channel(
        self, who: Principal, where: Location, name: str = "", *, manage_channels: bool
    ) -> None:
        """Removes one personality from the channel, or every one when `name` is empty.
        Needs Manage Channels (`managed_channel`)."""
        channel_id = require("location.channel_id", where.channel_id)
        managed_channel(who, where, manage_channels)
        personality = await self._personality(name, who) if name.strip() else None
        if not await self._db.deactivate(channel_id, personality.id if personality else None):
            if personality is None:
                raise NotFound(
                    "no personality is activated in this channel", reason="NOT_ACTIVATED"
                )
            raise NotFound(
                f"{personality.display_name} is not activated in this channel",
                reason="NOT_ACTIVATED",
            )

    async def channel_activation(self, where: Location) -> ChannelActivation | None:
        """The first personality activated in the channel."""
        return await self._db.get_activation(require("location.channel_id", where.channel_id))


class ModerationAdmin(AdminBase):
    def _superuser(self, who: Principal) -> None:
        if not who.superuser:
            raise PermissionDenied("only superusers manage the denylist")

    async def add_deny(self, who: Principal, entry: DenyEntry) -> DenyEntry:
        self._superuser(who)
        target_id = require("entry.target_id", entry.target_id)
        if entry.target is DenyTarget.GUILD:
            target_id = discord_id("entry.target_id", target_id, "server")
        scope_id = entry.scope_id.strip()
        if entry.scope is DenyScope.BOT:
            scope_id = ""
        elif not scope_id:
            raise InvalidArgument("entry.scope_id", f"a {entry.scope.value} entry names one")
        elif entry.scope in DISCORD_ID_SCOPES:
            scope_id = discord_id("entry.scope_id", scope_id, DISCORD_ID_SCOPES[entry.scope])
        elif entry.scope is DenyScope.PERSONALITY:
            scope_id = (await self._personality(scope_id, who, "entry.scope_id")).slug
        return await self._db.add_deny(
            target=entry.target,
            target_id=target_id,
            scope=entry.scope,
            scope_id=scope_id,
            mode=entry.mode,
            reason=limit_text("entry.reason", entry.reason, 500),
        )

    async def remove_deny(self, who: Principal, entry_id: str) -> None:
        self._superuser(who)
        require("entry_id", entry_id)
        if not is_uuid(entry_id) or not await self._db.remove_deny(entry_id):
            raise NotFound(f"no denylist entry {entry_id}", reason="ENTRY_NOT_FOUND")

    async def list_deny(self, who: Principal) -> list[DenyEntry]:
        self._superuser(who)
        return await self._db.list_deny()
