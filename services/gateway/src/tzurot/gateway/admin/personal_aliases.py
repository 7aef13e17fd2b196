"""A user's own aliases (`/alias add|remove|list`): only they use them, and for them they win
over a global alias of the same name. A personality's own name (slug or display name) is never
an alias; every refusal says why. Aliases are compared by key, as global aliases and names are
(`same_key`: "σοφος" and "σοφοσ" are one alias)."""

from __future__ import annotations

from dataclasses import dataclass

from tzurot.gateway.admin.base import MAX_NAME, AdminBase, Principal, may_see, require
from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import normalize_alias
from tzurot.gateway.personality_access import as_seen_by, names_itself
from tzurot.gateway.store.id_names import refuse_id_shaped
from tzurot.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

MAX_PERSONAL_ALIASES = 100


@dataclass(frozen=True)
class PersonalAlias:
    alias: str
    personality: Personality
    shadows: str = ""
    """The personality the same name means for everyone else, hidden for this user."""


class PersonalAliasAdmin(AdminBase):
    async def add_personal_alias(self, who: Principal, name: str, alias: str) -> PersonalAlias:
        user = who.require_user()
        display = require("alias", alias, MAX_NAME).lstrip("@").strip()
        key = normalize_alias(display)
        if not key:
            raise InvalidArgument("alias", "the alias is empty")
        refuse_id_shaped("alias", display)  # an id means its personality, never an alias
        personality = await self._personality(name, who)
        shadowed = await self._global_meaning(key, who)
        if shadowed is not None and names_itself(shadowed, key):
            raise AlreadyExists(
                f"@{display} is the name of {shadowed.display_name}; an alias cannot take a "
                "personality's own name",
                reason="ALIAS_IS_A_NAME",
            )
        mine = await self._db.personal_alias(user.id, key)
        if mine is not None:
            raise AlreadyExists(
                f"you already use @{display} for {mine.display_name}"
                + ("" if mine.id == personality.id else "; `/alias remove` it first"),
                reason="ALIAS_EXISTS",
            )
        if shadowed is not None and shadowed.id == personality.id:
            raise AlreadyExists(
                f"@{display} already means {personality.display_name} for everyone",
                reason="ALIAS_EXISTS",
            )
        added = await self._db.add_personal_alias(
            user.id, key, display, personality.id, limit=MAX_PERSONAL_ALIASES
        )
        if not added:  # the limit (a concurrent add of the same alias lands above)
            raise FailedPrecondition(
                f"you have {MAX_PERSONAL_ALIASES} aliases, the most one person may have; "
                "`/alias remove` one first",
                reason="TOO_MANY_ALIASES",
            )
        return PersonalAlias(display, as_seen_by(personality, who.user), _name(shadowed))

    async def remove_personal_alias(self, who: Principal, alias: str) -> None:
        user = who.require_user()
        key = normalize_alias(require("alias", alias, MAX_NAME))
        if not await self._db.remove_personal_alias(user.id, key):
            raise NotFound(f"you have no alias @{alias.lstrip('@')}", reason="ALIAS_NOT_FOUND")

    async def list_personal_aliases(self, who: Principal) -> list[PersonalAlias]:
        user = who.require_user()
        listed = []
        for display, personality in await self._db.personal_aliases(user.id):
            if not may_see(personality, who):
                continue  # made private since: it answers nobody but its owner
            shadowed = await self._global_meaning(normalize_alias(display), who)
            if shadowed is not None and shadowed.id == personality.id:
                shadowed = None
            listed.append(
                PersonalAlias(display, as_seen_by(personality, who.user), _name(shadowed))
            )
        return listed

    async def _global_meaning(self, key: str, who: Principal) -> Personality | None:
        """The personality `key` means for everyone (a name or a global alias) that `who`
        could reach."""
        found = await self._store.find_personality(key)
        if found is not None and not may_see(found, who):
            # Someone else's private personality: the name may still mean one `who` sees.
            found = await self._store.find_personality(key, visible_to=who.user_id or "")
        return found


def _name(personality: Personality | None) -> str:
    return "" if personality is None else personality.display_name
