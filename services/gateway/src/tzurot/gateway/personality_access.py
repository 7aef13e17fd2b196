"""Which personality a name means for a user (its id, its exact slug, then their own alias,
then display name, then a global alias) and whether they may use it; personality lookups.
(Imports are admin use-cases, which check who may replace what: admin/personalities.py,
admin/cards.py.)"""

from __future__ import annotations

from dataclasses import replace

from tzurot.gateway.domain import Actor, CharacterFields, Personality, User
from tzurot.gateway.gateway_core import GatewayState
from tzurot.gateway.paging import Page, PageRequest, page_size, paginate
from tzurot.gateway.personalities import mention_key, normalize_alias, same_key
from tzurot.gateway.store.id_names import is_id
from tzurot.runtime.errors import NotFound, quoted


class PersonalityAccess(GatewayState):
    async def get_personality(self, name: str, actor: Actor | None) -> Personality:
        """The personality `name` means for `actor`, as they may see it (`as_seen_by`)."""
        user = None if actor is None else await self._store.upsert_user(actor)
        return as_seen_by(await self._usable_personality(name, user), user)

    async def list_personalities(
        self,
        actor: Actor | None,
        page: PageRequest | None = None,
        *,
        owned_by: str | None = None,
    ) -> Page[Personality]:
        """One page (by slug) of the personalities `actor` may use, as they may see them
        (`as_seen_by`); `owned_by` keeps only those of that owner ('' for the operator's,
        which have none)."""
        page = page or PageRequest()
        page_size(page.size)  # refuse a bad size before any work
        user = None if actor is None else await self.user(actor)
        usable = [
            as_seen_by(p, user)
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

    async def find_personality_for(
        self, name: str, user: User | None, *, operator: bool = False
    ) -> Personality | None:
        """What a typed name means in slash commands and every other lookup (GetPersonality,
        Generate, UpdatePersonality, DeletePersonality and every admin path): a personality's
        id (its canonical UUID text) means that personality alone, or nothing when the user may
        not use it, never a name (none is spelled as an id: `store/id_names.py`), so the bot,
        which checks a personality and then acts on it by id, acts on that one or is refused,
        never on another that took its name meanwhile; then by exact slug,
        then the user's own alias, then display name (as written, then by its key), then a
        global alias, among the personalities the user may use (every one for the
        `operator`): someone else's private personality never hides one the user may use.
        A slug is an identifier, not a name: here it always means its own personality
        (autocomplete and every admin path send slugs, and a use-case that checks or changes
        a personality found by its slug must land on that one). The user's own alias comes
        next, before the names: a display name another personality took after the user chose
        the alias does not take their lookups from it. @mentions rank otherwise
        (`find_mentions`, ResolveMentions): there the user's own alias comes before every
        name of equal text, a slug included."""
        if is_id(name):  # no name is spelled as an id (`store/id_names.py`): no fallthrough
            by_id = await self._store.get_personality(name)  # cached
            return by_id if by_id is not None and (operator or may_use(by_id, user)) else None
        found = await self._store.find_personality(name)  # cached; a slug ranks first
        usable = found is not None and (operator or may_use(found, user))
        if found is not None and usable and is_slug_of(found, name):
            return found
        if user is not None:
            mine = await self._admin_store.personal_alias(user.id, normalize_alias(name))
            if mine is not None and (operator or may_use(mine, user)):
                return mine
        if found is not None and not usable:
            found = await self._store.find_personality(
                name, visible_to="" if user is None else user.id
            )
        return found

    async def _usable_personality(self, name: str, user: User | None) -> Personality:
        personality = await self.find_personality_for(name, user)
        if personality is None or not may_use(personality, user):
            raise NotFound(f"no personality named {quoted(name)}", reason="PERSONALITY_NOT_FOUND")
        return personality


def is_slug_of(personality: Personality, name: str) -> bool:
    """`name` is the personality's slug: it means that personality for everyone, before any
    alias (`find_personality_for`)."""
    return same_key(normalize_alias(name)) == personality.slug


def names_itself(personality: Personality, name: str) -> bool:
    """`name` is the personality's slug or display name, as written or by its mention key
    ("luna" names "✨Luna✨", as `find_personality` finds it), as keys are compared
    (`same_key`)."""
    key = same_key(normalize_alias(name))
    display = personality.display_name
    return key in (personality.slug, same_key(normalize_alias(display))) or (
        key != "" and key == mention_key(display)
    )


def may_use(personality: Personality, user: User | None) -> bool:
    """Private personalities are usable by their owner and superusers only."""
    if personality.public or user is None:
        return personality.public
    return user.superuser or personality.owner_user_id == user.id


def as_seen_by(personality: Personality, user: User | None) -> Personality:
    """The personality as `user` may see it: its owner and superusers (and a caller acting
    for no user: the operator, a service) see all of it; anyone else what the bot shows them
    (names, description, author's note, cleanup rules, error message, flags), without the
    prompt material a card export would carry (its owner's only): the system prompt, the
    character's personality, scenario, example dialogues and post-history instructions,
    the card's other fields and imported custom fields."""
    if user is None or user.superuser or personality.owner_user_id == user.id:
        return personality
    character = personality.character
    return replace(
        personality,
        system_prompt="",
        character=CharacterFields(
            description=character.description,
            author_note=character.author_note,
            author_note_depth=character.author_note_depth,
        ),
        card={},
        custom_fields={},
    )
