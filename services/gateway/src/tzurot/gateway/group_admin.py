"""Group channels: who is activated in a channel (with talkativeness), and the talkativeness
a personality may be given (written with its other fields by UpdatePersonality)."""

from __future__ import annotations

import math

from tzurot.gateway.domain import Location, User
from tzurot.gateway.group_store import ActiveMember, GroupStore
from tzurot.gateway.groups import may_use
from tzurot.runtime.errors import InvalidArgument


class GroupAdmin:
    def __init__(self, store: GroupStore) -> None:
        self._store = store

    async def members(self, where: Location, user: User | None) -> list[ActiveMember]:
        return [
            m
            for m in await self._store.members(_channel(where))
            if user is None or may_use(m.activation.personality, user)
        ]


def checked_talkativeness(value: float) -> float:
    """`value`, a talkativeness: between 0 (never speaks unprompted) and 1 (always). Who may
    change it is who may change the personality (its owner, a superuser, the operator)."""
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidArgument("personality.talkativeness", "talkativeness is between 0 and 1")
    return value


def _channel(where: Location) -> str:
    channel_id = where.channel_id.strip()
    if not channel_id:
        raise InvalidArgument("location.channel_id", "location.channel_id is required")
    return channel_id
