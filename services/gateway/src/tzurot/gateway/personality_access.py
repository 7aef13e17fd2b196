"""Which personality a name means for a user (slug, display name, their own alias, then a
global alias) and whether they may use it; personality lookups and the seed import."""

from __future__ import annotations

from tzurot.gateway.domain import Actor, Personality, User
from tzurot.gateway.gateway_core import GatewayState
from tzurot.gateway.paging import Page, PageRequest, page_size, paginate
from tzurot.gateway.personalities import PersonalitySeed, normalize_alias
from tzurot.runtime.errors import NotFound, quoted


class PersonalityAccess(GatewayState):
    async def import_personality(
        self, seed: PersonalitySeed, *, actor: Actor | None
    ) -> tuple[Personality, bool]:
        owner = None if actor is None else (await self._store.upsert_user(actor)).id
        return await self._store.import_personality(seed, owner_user_id=owner)

    async def get_personality(self, name: str, actor: Actor | None) -> Personality:
        user = None if actor is None else await self._store.upsert_user(actor)
        return await self._usable_personality(name, user)

    async def list_personalities(
        self,
        actor: Actor | None,
        page: PageRequest | None = None,
        *,
        owned_by: str | None = None,
    ) -> Page[Personality]:
        """One page (by slug) of the personalities `actor` may use; `owned_by` keeps only
        those of that owner ('' for the operator's, which have none)."""
        page = page or PageRequest()
        page_size(page.size)  # refuse a bad size before any work
        user = None if actor is None else await self.user(actor)
        usable = [
            p
            for p in await self._store.list_personalities()
            if may_use(p, user) and (owned_by is None or (p.owner_user_id or "") == owned_by)
        ]
        return paginate(usable, page, key=lambda p: p.slug)

    async def find_personality(self, name: str) -> Personality | None:
        return await self._store.find_personality(name)

    async def personality_for(self, name: str, user: User) -> Personality:
        """The personality `name` as `user` may use it, else NOT_FOUND."""
        return await self._usable_personality(name, user)

    async def personality_by_id(self, personality_id: str) -> Personality | None:
        return await self._store.get_personality(personality_id)

    async def find_personality_for(self, name: str, user: User | None) -> Personality | None:
        """By slug, display name, the user's own alias, then a global alias: a user's alias
        wins over a global one, never over a personality's own name."""
        found = await self._store.find_personality(name)
        if user is None or (found is not None and names_itself(found, name)):
            return found
        return await self._admin_store.personal_alias(user.id, normalize_alias(name)) or found

    async def _usable_personality(self, name: str, user: User | None) -> Personality:
        personality = await self.find_personality_for(name, user)
        if personality is None or not may_use(personality, user):
            raise NotFound(f"no personality named {quoted(name)}", reason="PERSONALITY_NOT_FOUND")
        return personality


def names_itself(personality: Personality, name: str) -> bool:
    """`name` is the personality's slug or display name (no user's alias can mean another)."""
    key = normalize_alias(name)
    return key in (personality.slug, normalize_alias(personality.display_name))


def may_use(personality: Personality, user: User | None) -> bool:
    """Private personalities are usable by their owner and superusers only."""
    if personality.public or user is None:
        return personality.public
    return user.superuser or personality.owner_user_id == user.id
