"""Users and personas: time zone, personas (default and per personality)."""

from __future__ import annotations

import zoneinfo

from tzurot.gateway.admin.base import AdminBase, Principal, limit_text, require
from tzurot.gateway.domain import Persona, User
from tzurot.runtime.errors import InvalidArgument, quoted

MAX_PERSONA_FIELD = 2000


class UserAdmin(AdminBase):
    async def set_timezone(self, who: Principal, tz: str) -> User:
        user = who.require_user()
        require("timezone", tz, 64)
        try:
            zoneinfo.ZoneInfo(tz)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise InvalidArgument(
                "timezone", f"{quoted(tz)} is not an IANA time zone (e.g. Europe/Berlin)"
            ) from None
        return await self._db.update_user(user.id, timezone=tz)

    async def set_persona(self, who: Principal, name: str, persona: Persona) -> Persona:
        user = who.require_user()
        for field, value in vars(persona).items():
            limit_text(f"persona.{field}", value, MAX_PERSONA_FIELD)
        personality_id = (await self._personality(name, who)).id if name.strip() else None
        await self._db.set_persona(user.id, personality_id, persona)
        return persona

    async def get_persona(self, who: Principal, name: str) -> tuple[Persona, bool]:
        user = who.require_user()
        if name.strip():
            personality = await self._personality(name, who)
            override = await self._db.get_persona(user.id, personality.id)
            if override is not None:
                return override, True
        default = await self._db.get_persona(user.id, None)
        return default or Persona(name=user.display_name), False
