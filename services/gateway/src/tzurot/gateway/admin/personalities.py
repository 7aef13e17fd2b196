"""Personalities and aliases: create, update, delete, aliases, and finding mentions of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from tzurot.gateway.admin.base import (
    MAX_NAME,
    MAX_TEXT,
    Principal,
    limit_text,
    may_see,
    named_for,
    require,
)
from tzurot.gateway.admin.deletions import DeletionAdmin
from tzurot.gateway.admin.skills import SkillAdmin
from tzurot.gateway.domain import CharacterFields, Personality
from tzurot.gateway.ids import is_uuid
from tzurot.gateway.mentions import find_mentions
from tzurot.gateway.personalities import (
    BIRTHDAY_PATTERN,
    SLUG_PATTERN,
    PersonalitySeed,
    avatar_url_problem,
    normalize_alias,
    slugify,
)
from tzurot.gateway.personality_access import as_seen_by
from tzurot.gateway.rules import check_author_note_depth, check_cleanup_rules, rules_to_json
from tzurot.runtime.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    quoted,
)

PERSONALITY_PATHS = frozenset(
    {
        "display_name",
        "avatar_url",
        "system_prompt",
        "character",
        "default_llm_config_id",
        "error_message",
        "birthday",
        "public",
        "nsfw",
        "voice_id",
        "aliases",
        "skills",
        "cleanup_rules",
        "suppress_embeds",
    }
)
CHARACTER_FIELDS = frozenset(f"character.{name}" for name in vars(CharacterFields()))
"""One character field at a time (the rest are kept), e.g. `character.author_note`."""


class PersonalityAdmin(SkillAdmin, DeletionAdmin):
    async def import_seed(self, who: Principal, seed: PersonalitySeed) -> tuple[Personality, bool]:
        """A YAML seed file, the operator's (or a superuser's) only: it replaces whatever
        personality holds its slug (prompt, visibility) and writes the global
        "<slug> default" config from `llm:`, `free_use` included, which no user may do to
        another's personality or with the operator's key. Users import character cards."""
        if not who.superuser:
            raise PermissionDenied(
                "only the operator and superusers import seed files; import a character card",
                reason="NOT_SUPERUSER",
            )
        return await self._store.import_personality(
            seed, owner_user_id=who.user_id, named=named_for(who)
        )

    async def create_personality(self, who: Principal, p: Personality) -> Personality:
        display = require("personality.display_name", p.display_name, MAX_NAME)
        slug = p.slug.strip() or slugify(display)
        if not SLUG_PATTERN.match(slug):
            raise InvalidArgument(
                "personality.slug", "a slug is lowercase letters, digits and dashes, at most 63"
            )
        values = await self._personality_values(who, p, set(PERSONALITY_PATHS) - {"aliases"})
        values.update(slug=slug, display_name=display, owner_user_id=who.user_id)
        aliases = self._aliases(p.aliases)
        personality_id = await self._db.create_personality(values, aliases, named=named_for(who))
        created = await self._store.get_personality(personality_id)
        assert created is not None
        return created

    async def update_personality(
        self,
        who: Principal,
        p: Personality,
        paths: Sequence[str],
        *,
        talkativeness: float | None = None,
    ) -> Personality:
        """Every field checked, then all of them written in one transaction, or none;
        `talkativeness` too (checked by the caller: group_admin.checked_talkativeness)."""
        key = p.id or p.slug
        if not key:
            raise InvalidArgument("personality.id", "name the personality by id or slug")
        target = await self._store.get_personality(p.id) if is_uuid(p.id) else None
        if target is None:
            # A name means what it means to every other command (`_owned`: the exact slug,
            # the user's own alias, ..., its limits and errors), so /character edit changes
            # the personality /personality delete of the same text would delete.
            target = await self._owned(p.slug or p.id, who, "personality.slug")
        elif not may_see(target, who):
            raise NotFound(f"no personality named {quoted(key)}", reason="PERSONALITY_NOT_FOUND")
        else:
            _require_owner(target, who)  # the one found, never looked up again by a name
        unknown = sorted(set(paths) - PERSONALITY_PATHS - CHARACTER_FIELDS)
        if unknown:
            raise InvalidArgument("update_paths", f"cannot update {', '.join(unknown)}")
        if not paths and talkativeness is None:
            raise InvalidArgument("update_paths", "name the fields to update")
        if "character" in paths and CHARACTER_FIELDS & set(paths):
            raise InvalidArgument(
                "update_paths", "update either character or some character.<field>, not both"
            )
        fields = {path.split(".", 1)[1] for path in paths if path in CHARACTER_FIELDS}
        if fields:
            kept = {k: v for k, v in vars(target.character).items() if k not in fields}
            merged = {**kept, **{k: getattr(p.character, k) for k in fields}}
            p = replace(p, character=CharacterFields(**merged))
            paths = [*(path for path in paths if path not in CHARACTER_FIELDS), "character"]
        values = await self._personality_values(who, p, set(paths) - {"aliases"})
        if "display_name" in values:
            values["display_name"] = require("personality.display_name", p.display_name, MAX_NAME)
        aliases = self._aliases(p.aliases) if "aliases" in paths else None
        await self._db.update_personality(
            target.id, values, aliases, named=named_for(who), talkativeness=talkativeness
        )
        updated = await self._store.get_personality(target.id)
        assert updated is not None
        return updated

    async def delete_personality(self, who: Principal, name: str) -> None:
        """Deletes a personality, private or public (its owner, a superuser or the operator),
        with everything memory keeps of it: its answers in flight, then memory's history,
        memories and outboxes of it, then its row. First its voice, when it was cloned, from
        the cloner's ElevenLabs account with their key (ElevenLabs unreachable fails the
        request before anything else is touched; a clone the key cannot delete is left
        there; a clone of it under way refuses the deletion, FAILED_PRECONDITION
        `CLONE_IN_PROGRESS`). Then the deletion is recorded on the row: it answers nobody
        from then on, and a deletion that fails half way is finished by a sweep
        (deletions.py; FAILED_PRECONDITION `DELETION_PENDING`)."""
        target = await self._owned(name, who)
        await self._delete_for_good(
            "personality",
            target.id,
            cloning=f"{quoted(target.slug)}'s voice is being cloned right now, so nothing was "
            "deleted; ask again once the clone is done (its voice is then deleted too)",
            deleting=f"{quoted(target.slug)} is being deleted by another request right now, "
            "so this one did nothing; if it is still there in a minute, ask again",
            interrupted=f"the deletion of {quoted(target.slug)} was interrupted by a failure "
            "on our side; it is recorded and finishes by itself, usually within minutes (up "
            "to a day while ElevenLabs cannot be reached to delete its cloned voices), so "
            "there is nothing to ask again (it answers nobody meanwhile)",
        )

    async def _personality_values(
        self, who: Principal, p: Personality, paths: set[str]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        texts = {
            "display_name": (p.display_name.strip(), MAX_NAME),
            "avatar_url": (p.avatar_url, 2048),
            "system_prompt": (p.system_prompt, MAX_TEXT),
            "error_message": (p.error_message, 2000),
            "voice_id": (p.voice_id, 200),
        }
        for name, (text, max_len) in texts.items():
            if name in paths:
                values[name] = limit_text(f"personality.{name}", text, max_len)
        if "avatar_url" in values:
            values["avatar_url"] = _checked_avatar_url(values["avatar_url"])
        for flag in ("public", "nsfw", "suppress_embeds"):
            if flag in paths:
                values[flag] = getattr(p, flag)
        if "character" in paths:
            values["character"] = _checked_character(p.character)
        if "cleanup_rules" in paths:
            values["cleanup_rules"] = rules_to_json(check_cleanup_rules(p.cleanup_rules))
        if "skills" in paths:
            values["skills"] = await self._checked_skills(p.skills)
        if "birthday" in paths:
            if p.birthday and BIRTHDAY_PATTERN.match(p.birthday) is None:
                raise InvalidArgument("personality.birthday", "birthday is MM-DD")
            values["birthday"] = p.birthday
        if "default_llm_config_id" in paths:
            config_id = p.default_llm_config_id or None
            if config_id is not None:
                await self._usable_config(who, config_id, "personality.default_llm_config_id")
            values["default_llm_config_id"] = config_id
        return values

    @staticmethod
    def _aliases(aliases: Sequence[str]) -> list[str]:
        for alias in aliases:
            if not normalize_alias(alias) or len(alias) > MAX_NAME:
                raise InvalidArgument(
                    "personality.aliases", f"alias {quoted(alias)} is not 1 to 80 characters"
                )
        return list(aliases)

    # ---- aliases ----

    async def add_alias(self, who: Principal, name: str, alias: str) -> Personality:
        """A global alias of a personality its owner (or a superuser) names. The store refuses
        what would take another personality's @mentions (its name or alias, exactly or
        followed by more words or punctuation) or that does not begin and end with a letter
        or digit, in the write's transaction under the alias lock (store/personalities.py
        `_refuse_alias`); someone else's private personality is never named, and its name
        refuses nothing."""
        display = require("alias", alias, MAX_NAME).lstrip("@").strip()
        if not normalize_alias(display):
            raise InvalidArgument("alias", "the alias is empty")
        target = await self._owned(name, who)
        await self._db.add_alias(target.id, display, named=named_for(who))
        updated = await self._store.get_personality(target.id)
        assert updated is not None
        return updated

    async def remove_alias(self, who: Principal, alias: str, personality: str = "") -> None:
        """Removes a global alias: from `personality` (an id, a slug or a name) only while it
        is that one's, else NOT_FOUND and nothing removed (it moved since the caller looked);
        without one, from whichever personality has it."""
        require("alias", alias, MAX_NAME)
        if personality.strip():
            target = await self._owned(personality, who)
            if not await self._db.remove_alias(alias, target.id):
                raise NotFound(
                    f"{quoted(alias)} is not an alias of {target.display_name}; nothing removed",
                    reason="ALIAS_NOT_FOUND",
                )
            return
        owner = await self._db.alias_owner(alias)
        if owner is None or not may_see(owner, who):
            raise NotFound(f"no alias {quoted(alias)}", reason="ALIAS_NOT_FOUND")
        _require_owner(owner, who)  # the alias's own personality, not one its slug names
        await self._db.remove_alias(alias, owner.id)

    # ---- mentions ----

    async def resolve_mentions(
        self, who: Principal, content: str, limit: int
    ) -> list[tuple[Personality, str, int]]:
        if limit < 0:
            raise InvalidArgument("limit", "limit is not negative")
        limit_text("content", content, 16_000)
        if "@" not in content:
            return []
        personalities = [p for p in await self._store.list_personalities() if may_see(p, who)]
        personal = []
        if who.user is not None:
            personal = [
                (alias, p)
                for alias, p in await self._db.personal_aliases(who.user.id)
                if may_see(p, who)
            ]
        return [
            (as_seen_by(p, who.user), text, offset)
            for p, text, offset in find_mentions(content, personalities, limit or 5, personal)
        ]


def _require_owner(target: Personality, who: Principal) -> None:
    """PERMISSION_DENIED `NOT_OWNER` unless `who` owns `target` or is a superuser (as
    `_owned` says, for a personality already found)."""
    if not (who.superuser or target.owner_user_id == who.user_id):
        raise PermissionDenied(
            f"only the owner of {quoted(target.slug)} or a superuser may change it",
            reason="NOT_OWNER",
        )


def _checked_character(character: CharacterFields) -> dict[str, Any]:
    for name, text in vars(character).items():
        if isinstance(text, str):
            limit_text(f"personality.character.{name}", text, MAX_TEXT)
    check_author_note_depth(character.author_note_depth)
    return dict(vars(character))


def _checked_avatar_url(url: str) -> str:
    """A URL Discord accepts as a webhook avatar (a well formed http(s) URL), or "" for none."""
    problem = avatar_url_problem(url.strip())
    if problem is not None:
        raise InvalidArgument("personality.avatar_url", problem)
    return url.strip()
