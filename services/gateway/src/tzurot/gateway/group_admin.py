"""Group channels: who is activated in a channel (with talkativeness), and setting it."""

from __future__ import annotations

import math

from tzurot.gateway.domain import Location, Personality, User
from tzurot.gateway.group_store import ActiveMember, GroupStore
from tzurot.gateway.groups import may_use
from tzurot.runtime.errors import InvalidArgument, PermissionDenied


class GroupAdmin:
    def __init__(self, store: GroupStore) -> None:
        self._store = store

    async def members(self, where: Location, user: User | None) -> list[ActiveMember]:
        return [
            m
            for m in await self._store.members(_channel(where))
            if user is None or may_use(m.activation.personality, user)
        ]

    async def set_talkativeness(
        self, user: User | None, personality: Personality, value: float
    ) -> float:
        if user is not None and not user.superuser and personality.owner_user_id != user.id:
            raise PermissionDenied(
                f"only the owner of {personality.slug!r} or a superuser may change it",
                reason="NOT_OWNER",
            )
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            raise InvalidArgument("personality.talkativeness", "talkativeness is between 0 and 1")
        await self._store.set_talkativeness(personality.id, value)
        return value


def _channel(where: Location) -> str:
    channel_id = where.channel_id.strip()
    if not channel_id:
        raise InvalidArgument("location.channel_id", "location.channel_id is required")
    return channel_id
