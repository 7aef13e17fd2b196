"""Personalities and aliases: lookups (cached in the catalog), imports, admin writes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.cache import TtlCache
from tzurot.gateway.domain import ConfigSource, DenyScope, LlmConfig, Personality
from tzurot.gateway.personalities import (
    PersonalitySeed,
    edges_problem,
    mention_key,
    normalize_alias,
    word_prefixes,
)
from tzurot.gateway.rules import rules_to_json
from tzurot.gateway.store.base import AdminSqlBase, SqlBase, alias_lock
from tzurot.gateway.store.in_flight import drop_personality_answers
from tzurot.gateway.store.previews import keep_withheld
from tzurot.gateway.store.rows import LIVE_PERSONALITY, PERSONALITY_COLUMNS, personality_from_row
from tzurot.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, quoted


def _named(key: str) -> sa.Select[Any]:
    """The live personality `key` (normalized) names best: slug, display name, then alias (the
    oldest first among equals)."""
    p = t.personalities.c
    alias_match = sa.exists().where(
        t.personality_aliases.c.personality_id == p.id, t.personality_aliases.c.alias == key
    )
    rank = sa.case((p.slug == key, 0), (sa.func.lower(p.display_name) == key, 1), else_=2)
    return (
        sa.select(*PERSONALITY_COLUMNS)
        .where(
            sa.or_(p.slug == key, sa.func.lower(p.display_name) == key, alias_match),
            LIVE_PERSONALITY,
        )
        .order_by(rank, p.created_at)
        .limit(1)
    )


def delete_references(which: sa.ColumnElement[bool]) -> list[sa.Delete]:
    """Deletes the rows that name the personalities `which` selects without a foreign key to
    them (a text scope and target, so nothing cascades): the settings of their level and of
    each user's level toward them, their lorebook attachments (the lorebooks stay), and the
    denylist entries toward them (by slug: one that outlived its personality would apply to
    the next personality given that slug). Run before the personalities' rows, in their
    transaction: the rows are what finds the ids and slugs, and a deletion run again finds
    nothing left to do. `jobs.personality_id` has no foreign key either and keeps the
    delivered and failed jobs on purpose (tables.py says why)."""
    p, s, a, d = t.personalities.c, t.settings.c, t.lorebook_attachments.c, t.denylist.c
    ids = sa.select(sa.cast(p.id, sa.Text)).where(which)
    return [
        sa.delete(t.settings).where(s.scope == ConfigSource.PERSONALITY.value, s.scope_id.in_(ids)),
        # "<user id>:<personality id>"
        sa.delete(t.settings).where(
            s.scope == ConfigSource.USER_PERSONALITY.value,
            sa.func.split_part(s.scope_id, ":", 2).in_(ids),
        ),
        sa.delete(t.lorebook_attachments).where(a.scope == "personality", a.target.in_(ids)),
        sa.delete(t.denylist).where(
            d.scope == DenyScope.PERSONALITY.value, d.scope_id.in_(sa.select(p.slug).where(which))
        ),
    ]


async def _refuse_slug_being_deleted(conn: AsyncConnection, slug: str) -> None:
    """FAILED_PRECONDITION when the personality at `slug` is being deleted: an import would
    update the row its deletion removes (and memory has forgotten its id for good)."""
    p = t.personalities.c
    stmt = (
        sa.select(p.id)
        .where(p.slug == slug, p.deletion_requested_at.is_not(None))
        .with_for_update(of=t.personalities)
    )
    if await conn.scalar(stmt) is not None:
        raise FailedPrecondition(
            f"personality {quoted(slug)} is being deleted; import it again once that has "
            "finished (usually within minutes, up to a day while ElevenLabs cannot be reached)",
            reason="PERSONALITY_DELETING",
        )


HolderNamed = Callable[[Personality], str]
"""How an error names a personality to the caller: its display name, or exactly `HIDDEN` for
one they may not see (admin/base.py `named_for`). The checks below also read it as whether
the caller may see it: a name of a personality they may not see is never the reason for a
refusal (that would tell them it exists), an alias is (aliases are one global namespace, so
adding the alias itself would tell them anyway), worded `HIDDEN`."""

HIDDEN = "another personality"


def _everyone_named(holder: Personality) -> str:
    """The default: the operator's view (seed files, tests), every personality named."""
    return holder.display_name


def _shown(named: HolderNamed, holder: Personality) -> bool:
    return named(holder) != HIDDEN


async def _names_among(
    conn: AsyncConnection, keys: Sequence[str], personality_id: str | None
) -> list[tuple[Personality, str]]:
    """The live personalities (but `personality_id`) whose slug or display name's
    `mention_key` is one of `keys`, each with that key, the oldest first. The keys are
    computed here, as `find_mentions` computes them: the display names are read by a
    substring of their first word (`mention_key` only trims and lower-cases)."""
    if not keys:
        return []
    p = t.personalities.c
    lowered = sa.func.lower(p.display_name)
    firsts = {key.split(" ")[0] for key in keys}
    rows = (
        await conn.execute(
            sa.select(p.id, p.slug, p.display_name)  # the few matching read whole below
            .where(
                sa.or_(p.slug.in_(keys), *(lowered.contains(w, autoescape=True) for w in firsts)),
                LIVE_PERSONALITY,
                *([] if personality_id is None else [p.id != personality_id]),
            )
            .order_by(p.created_at, p.id)
        )
    ).all()
    matched: list[tuple[str, str]] = []
    for row in rows:
        key = next((k for k in (row.slug, mention_key(row.display_name)) if k in keys), None)
        if key is not None:
            matched.append((str(row.id), key))
    whole = await _personalities(conn, [found_id for found_id, _ in matched])
    return [(whole[found_id], key) for found_id, key in matched]


async def _personalities(conn: AsyncConnection, ids: Iterable[Any]) -> dict[str, Personality]:
    rows = (
        await conn.execute(
            sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.id.in_(list(set(ids))))
        )
    ).all()
    found = [personality_from_row(row._mapping) for row in rows]
    return {p.id: p for p in found}


def _refuse_edges(field: str, name: str) -> None:
    problem = edges_problem(name)
    if problem is not None:
        raise InvalidArgument(
            field,
            f"{quoted(name.strip())} cannot be an alias: {problem}",
            reason="NAME_NOT_A_WORD",
        )


def _keys_of(names: Iterable[str]) -> list[str]:
    """The `mention_key`s of names new to a personality; INVALID_ARGUMENT
    `NAME_NOT_MENTIONABLE` for a name without one (no letter or digit: '🌙', '!!!')."""
    keys: set[str] = set()
    for name in names:
        key = mention_key(name)
        if not key:
            raise InvalidArgument(
                "name",
                f"{quoted(name.strip())} cannot be a name: it has no letter or digit, so "
                "nothing to @mention it by; give it a name with at least one",
                reason="NAME_NOT_MENTIONABLE",
            )
        keys.add(key)
    return sorted(keys)


_BEGUN_ALIASES_READ = 20
"""How many of the aliases that begin with a new name's key (and a non-ASCII-word character)
are read to find one it begins as a word (`_refuse_alias_as_name`): the alias lock is held."""


async def _refuse_alias_as_name(
    conn: AsyncConnection,
    names: Iterable[str],
    personality_id: str | None,
    named: HolderNamed,
) -> None:
    """What refuses `names` (a personality's slug or display name, new to it), each by its
    `mention_key` (how @mentions read it: "Dr. Who?" as "dr. who"):

    - INVALID_ARGUMENT `NAME_NOT_MENTIONABLE`: one without a key (no letter or digit);
    - ALREADY_EXISTS `NAME_IS_AN_ALIAS`: one that is a global alias of another live
      personality (`@name` would mean either one, and a newcomer would take the alias over);
    - ALREADY_EXISTS `NAME_BEGINS_AN_ALIAS`: one another's global alias begins with, then
      more words or punctuation (a new "The" against "the oracle": `find_mentions` puts
      names first, so "@the oracle" would go to the newcomer). The alias is quoted only when
      its personality is shown (`named`): the caller typed the name, not the alias's rest.

    Run under the alias lock (which every alias write takes), so an alias added meanwhile is
    seen. The alias's personality is worded by `named`."""
    keys = _keys_of(names)
    if not keys:
        return
    a = t.personality_aliases.c
    others: list[sa.ColumnElement[bool]] = [LIVE_PERSONALITY]
    if personality_id is not None:
        others.append(a.personality_id != personality_id)
    stmt = (
        sa.select(a.alias, a.display, a.personality_id)
        .join(t.personalities, t.personalities.c.id == a.personality_id)
        .where(a.alias.in_(keys), *others)
        .order_by(a.alias)
        .limit(1)
    )
    row = (await conn.execute(stmt)).one_or_none()
    if row is not None:
        holder = (await _personalities(conn, [row.personality_id]))[str(row.personality_id)]
        raise AlreadyExists(
            f"@{row.display} is already an alias of {named(holder)}, so a personality cannot "
            f"take {quoted(row.alias)} as its name (@{row.display} would mean either one); "
            "choose another name",
            reason="NAME_IS_AN_ALIAS",
        )
    # The alias goes on after the key with a character that ends a word: not an ASCII letter,
    # digit, '_' or '-' (a non-ASCII letter is left to `word_prefixes`).
    starting = sa.or_(
        *(
            sa.and_(
                a.alias.startswith(key, autoescape=True),
                sa.not_(sa.func.substr(a.alias, len(key) + 1, 1).op("~")("^[a-z0-9_-]$")),
            )
            for key in keys
        )
    )
    rows = (
        await conn.execute(
            sa.select(a.alias, a.display, a.personality_id)
            .join(t.personalities, t.personalities.c.id == a.personality_id)
            .where(starting, *others)
            .order_by(a.alias)
            .limit(_BEGUN_ALIASES_READ)
        )
    ).all()
    for row in rows:
        begun = next((key for key in keys if key in word_prefixes(row.alias)), None)
        if begun is None:
            continue
        holder = (await _personalities(conn, [row.personality_id]))[str(row.personality_id)]
        if not _shown(named, holder):
            raise AlreadyExists(
                f"a global alias of {HIDDEN} begins with @{begun}, so a personality cannot "
                f"take {quoted(begun)} as its name: @mentions of that alias would go to it "
                "instead; choose another name",
                reason="NAME_BEGINS_AN_ALIAS",
            )
        raise AlreadyExists(
            f"@{row.display} is an alias of {named(holder)}, so a personality cannot take "
            f"{quoted(begun)} as its name: @mentions such as '@{row.display} …' would go to "
            "it instead; choose another name",
            reason="NAME_BEGINS_AN_ALIAS",
        )


async def _refuse_extending(
    conn: AsyncConnection,
    names: Iterable[str],
    personality_id: str | None,
    owner_user_id: str | None,
    named: HolderNamed,
) -> None:
    """ALREADY_EXISTS `NAME_EXTENDS_A_NAME` for one of `names` (a personality's names, by
    their `mention_key`) that is another live personality's name or global alias followed by
    more words or punctuation ("Sage Please", "Sage's" against Sage): among names the longest
    wins in `find_mentions`, so it would take "@Sage please help" from Sage (review s5 H1).

    Personalities of one owner (`owner_user_id`; None: the operator's) may extend each
    other's names ("The" and "The Oracle"). A name of a personality the caller may not see
    (`named`) refuses nothing, as in `_refuse_alias`; an alias does, worded `HIDDEN`. Run
    under the alias lock for a new name and when a personality is made public."""
    keys = {key for key in map(mention_key, names) if key}
    prefixes = sorted({prefix for key in keys for prefix in word_prefixes(key)})
    if not prefixes:
        return
    for holder, begun in await _names_among(conn, prefixes, personality_id):
        if holder.owner_user_id == owner_user_id or not _shown(named, holder):
            continue
        raise AlreadyExists(
            f"@{begun} is the name of {named(holder)}, so a personality cannot take a name "
            f"that begins with it and goes on (@mentions such as '@{begun} …' would go to it "
            "instead); choose another name",
            reason="NAME_EXTENDS_A_NAME",
        )
    a = t.personality_aliases.c
    rows = (
        await conn.execute(
            sa.select(a.alias, a.personality_id)
            .join(t.personalities, t.personalities.c.id == a.personality_id)
            .where(
                a.alias.in_(prefixes),
                LIVE_PERSONALITY,
                *([] if personality_id is None else [a.personality_id != personality_id]),
            )
            .order_by(a.alias)
        )
    ).all()
    holders = await _personalities(conn, [row.personality_id for row in rows])
    for row in rows:
        holder = holders[str(row.personality_id)]
        if holder.owner_user_id == owner_user_id:
            continue
        raise AlreadyExists(
            f"@{row.alias} is an alias of {named(holder)}, so a personality cannot take a name "
            f"that begins with it and goes on (@mentions such as '@{row.alias} …' would go to "
            "it instead); choose another name",
            reason="NAME_EXTENDS_A_NAME",
        )


async def _refuse_alias(
    conn: AsyncConnection,
    personality_id: str | None,
    alias: str,
    named: HolderNamed,
    *,
    field: str,
    held: frozenset[str] = frozenset(),
) -> bool:
    """Whether `alias` may become a global alias of the personality (False: it has it
    already), or what refuses it, in this order:

    - INVALID_ARGUMENT `NAME_NOT_A_WORD`: not beginning and ending with a letter or digit;
    - ALREADY_EXISTS `ALIAS_TAKEN`: another personality's alias;
    - ALREADY_EXISTS `ALIAS_IS_A_NAME`: another personality's own name (slug or display
      name): `@name` would reach either one;
    - ALREADY_EXISTS `ALIAS_EXTENDS_A_NAME`: another personality's name or alias followed by
      more words or punctuation ("sage please", "sage's" against Sage): it would take
      "@Sage please …" from Sage wherever the longest match wins.

    A name of a personality the caller may not see (`named`) refuses nothing (`find_mentions`
    puts that personality's names before any global alias for whoever sees it); an alias
    does, worded `HIDDEN`. `held` are the aliases the personality had before this write
    (normalized): kept whatever the rules say now, as names are (`_new_names`). Run under the
    alias lock, in the write's transaction."""
    key = normalize_alias(alias)
    display = alias.strip().lstrip("@").strip()
    p, a = t.personalities.c, t.personality_aliases.c
    owner = await conn.scalar(sa.select(a.personality_id).where(a.alias == key))
    if owner is not None and str(owner) == personality_id:
        return False
    if key in held:
        return True
    _refuse_edges(field, display)
    if owner is not None:
        holder = (await _personalities(conn, [owner]))[str(owner)]
        shown = _shown(named, holder)
        raise AlreadyExists(
            f"alias {quoted(key)} already belongs to "
            + (f"personality {quoted(holder.slug)}" if shown else HIDDEN),
            reason="ALIAS_TAKEN",
            metadata={"personality": holder.slug} if shown else None,
        )
    prefixes = word_prefixes(key)
    candidates = [key, *prefixes]
    names = await _names_among(conn, candidates, personality_id)
    aliases = (
        (
            await conn.execute(
                sa.select(a.alias, a.display, a.personality_id)
                .join(t.personalities, p.id == a.personality_id)
                .where(
                    a.alias.in_(prefixes),
                    LIVE_PERSONALITY,
                    *([] if personality_id is None else [a.personality_id != personality_id]),
                )
                .order_by(a.alias)
            )
        ).all()
        if prefixes
        else []
    )
    holders = await _personalities(conn, [row.personality_id for row in aliases])
    for holder, begun in names:
        if not _shown(named, holder):
            continue
        if key in (holder.slug, mention_key(holder.display_name)):
            raise AlreadyExists(
                f"@{display} is the name of {named(holder)}; an alias cannot take a "
                "personality's own name",
                reason="ALIAS_IS_A_NAME",
            )
        raise AlreadyExists(
            f"@{display} begins with @{begun}, the name of {named(holder)}: it would take "
            f"@mentions such as '@{display} …' meant for {named(holder)}; an alias cannot be "
            "another personality's name followed by more words or punctuation",
            reason="ALIAS_EXTENDS_A_NAME",
        )
    for row in aliases:
        holder = holders[str(row.personality_id)]
        raise AlreadyExists(
            f"@{display} begins with @{row.display}, an alias of {named(holder)}: it would "
            f"take @mentions such as '@{display} …' meant for {named(holder)}; an alias "
            "cannot be another personality's alias followed by more words or punctuation",
            reason="ALIAS_EXTENDS_A_NAME",
        )
    return True


async def _aliases_of(conn: AsyncConnection, personality_id: str) -> frozenset[str]:
    a = t.personality_aliases.c
    stmt = sa.select(a.alias).where(a.personality_id == personality_id)
    return frozenset((await conn.execute(stmt)).scalars())


def _new_names(existing: Personality | None, *names: str) -> list[str]:
    """Those of `names` the personality (None: a new one) does not go by already: a name it
    had before the rule (tied with another's alias) is kept, not refused at each update."""
    had = set() if existing is None else {existing.slug, existing.display_name}
    kept = {mention_key(name) for name in had}
    return [name for name in names if mention_key(name) not in kept]


class PersonalityReads(SqlBase):
    # Personalities (by name and id) and LLM configs (by id). Every write to them in this
    # process clears it (AdminStore shares it); other replicas' writes show within the TTL.
    catalog: TtlCache[Personality | LlmConfig]

    async def find_personality(
        self, name: str, *, visible_to: str | None = None
    ) -> Personality | None:
        """By slug, display name or alias, case-insensitively, in that order of preference.

        `visible_to`: rank only among the public personalities and that user's own ("" for
        public ones only), so someone else's private personality never hides one the user
        may use (not cached: asked only when the first match is someone else's private one).
        """
        key = normalize_alias(name)
        if visible_to is not None:
            return await self._find_visible_personality(key, visible_to)
        cached = self.catalog.get(("name", key))
        if isinstance(cached, Personality):
            return cached
        generation = self.catalog.generation
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(_named(key))).one_or_none()
        if row is None:
            return None
        personality = personality_from_row(row._mapping)
        self.catalog.put(("name", key), personality, generation)
        self.catalog.put(("personality", personality.id), personality, generation)
        return personality

    async def _find_visible_personality(self, key: str, user_id: str) -> Personality | None:
        p = t.personalities.c
        visible = p.public if not user_id else sa.or_(p.public, p.owner_user_id == user_id)
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(_named(key).where(visible))).one_or_none()
        return None if row is None else personality_from_row(row._mapping)

    async def refuse_alias_as_name(
        self,
        slug: str,
        name: str,
        *,
        named: HolderNamed = _everyone_named,
        aliases: Sequence[str] = (),
        public: bool = True,
        owner_platform_id: str = "",
    ) -> None:
        """What `import_personality` of `slug` named `name` with `aliases` (`public`, a new
        one owned by the user of `owner_platform_id`, "": the operator) would refuse in its
        names and aliases (`_refuse_alias_as_name`, `_refuse_extending`, `_refuse_alias`),
        checked now (a dry run's)."""
        async with self._autocommit.connect() as conn:
            found = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.slug == slug)
                )
            ).one_or_none()
            existing = None if found is None else personality_from_row(found._mapping)
            fresh = _new_names(existing, slug, name)
            await _refuse_alias_as_name(
                conn, fresh, None if existing is None else existing.id, named
            )
            if existing is not None and public and not existing.public:
                fresh = [slug, name]
            owner: str | None = None
            if existing is not None:
                owner = existing.owner_user_id
            elif owner_platform_id:
                found_owner = await conn.scalar(
                    sa.select(t.users.c.id).where(t.users.c.platform_user_id == owner_platform_id)
                )
                owner = "" if found_owner is None else str(found_owner)  # "": owns nothing
            await _refuse_extending(
                conn, fresh, None if existing is None else existing.id, owner, named
            )
            held = frozenset() if existing is None else await _aliases_of(conn, existing.id)
            for alias in aliases:
                await _refuse_alias(
                    conn,
                    None if existing is None else existing.id,
                    alias,
                    named,
                    field="aliases",
                    held=held,
                )

    async def get_personality(self, personality_id: str) -> Personality | None:
        cached = self.catalog.get(("personality", personality_id))
        if isinstance(cached, Personality):
            return cached
        generation = self.catalog.generation
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(
                        t.personalities.c.id == personality_id, LIVE_PERSONALITY
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        personality = personality_from_row(row._mapping)
        self.catalog.put(("personality", personality_id), personality, generation)
        return personality

    async def list_personalities(self) -> list[Personality]:
        stmt = (
            sa.select(*PERSONALITY_COLUMNS).where(LIVE_PERSONALITY).order_by(t.personalities.c.slug)
        )
        async with self._autocommit.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [personality_from_row(row._mapping) for row in rows]

    async def import_personality(
        self,
        seed: PersonalitySeed,
        *,
        owner_user_id: str | None,
        extra_values: Mapping[str, Any] | None = None,
        then: Callable[[AsyncConnection, str], Awaitable[None]] | None = None,
        may_replace: Callable[[Personality], None] | None = None,
        named: HolderNamed = _everyone_named,
    ) -> tuple[Personality, bool]:
        """Creates or updates a personality (by slug) with its aliases and default config.

        `extra_values` are more personality columns (card, custom_fields, voice_id); `then`
        runs in the same transaction with the personality's id (its card assets, lorebook).
        `may_replace` is shown the personality already at the slug, read in the transaction
        (locked): it raises to refuse the import (someone else's personality). A slug or
        name that another personality's global alias already is, and that the personality at
        the slug does not have yet, is refused (`NAME_IS_AN_ALIAS`, the holder worded by
        `named`): `@name` would otherwise move from the alias's personality to this one.
        Names and aliases are refused as `_refuse_alias_as_name`, `_refuse_extending` and
        `_refuse_alias` say (those the personality had already are kept; all of its names
        are checked by `_refuse_extending` when the import makes it public).
        """
        slug = seed.effective_slug
        async with self._engine.begin() as conn:
            # Imports are rare and touch several rows whose uniqueness is checked in code (the
            # default config, alias clashes, who owns the slug): one at a time, or two would
            # both pass the checks.
            await conn.execute(alias_lock())
            await _refuse_slug_being_deleted(conn, slug)
            found = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS)
                    .where(t.personalities.c.slug == slug)
                    .with_for_update(of=t.personalities)
                )
            ).one_or_none()
            existing = None if found is None else personality_from_row(found._mapping)
            if may_replace is not None and existing is not None:
                may_replace(existing)
            fresh = _new_names(existing, slug, seed.name)
            await _refuse_alias_as_name(
                conn, fresh, None if existing is None else existing.id, named
            )
            if existing is not None and seed.public and not existing.public:
                fresh = [slug, seed.name]  # made public: its names reach everyone now
            await _refuse_extending(
                conn,
                fresh,
                None if existing is None else existing.id,
                owner_user_id if existing is None else existing.owner_user_id,
                named,
            )
            config_id = await self._upsert_default_config(conn, slug, seed)
            values: dict[str, Any] = {
                "slug": slug,
                "display_name": seed.name,
                "avatar_url": seed.avatar_url,
                "system_prompt": seed.system_prompt,
                "character": seed.character.model_dump(),
                "cleanup_rules": rules_to_json(seed.rules),
                "default_llm_config_id": config_id,
                "error_message": seed.error_message,
                "birthday": seed.birthday,
                "owner_user_id": owner_user_id,
                "public": seed.public,
                "nsfw": seed.nsfw,
                **(extra_values or {}),
            }
            insert_stmt = insert(t.personalities).values(**values)
            excluded = insert_stmt.excluded
            update = {k: excluded[k] for k in values if k not in ("slug", "owner_user_id")}
            stmt = insert_stmt.on_conflict_do_update(
                index_elements=[t.personalities.c.slug],
                set_={**update, "updated_at": sa.func.now()},
            ).returning(t.personalities.c.id, sa.literal_column("xmax = 0").label("created"))
            row = (await conn.execute(stmt)).one()
            await self._replace_aliases(conn, str(row.id), seed.aliases, named)
            if then is not None:
                await then(conn, str(row.id))
            personality = await self._personality_by_id(conn, row.id)
        self.catalog.clear()
        return personality, bool(row.created)

    async def _upsert_default_config(
        self, conn: AsyncConnection, slug: str, seed: PersonalitySeed
    ) -> str | None:
        if seed.llm is None:
            return None
        name = f"{slug} default"
        existing = await conn.scalar(
            sa.select(t.llm_configs.c.id).where(
                t.llm_configs.c.owner_user_id.is_(None),
                sa.func.lower(t.llm_configs.c.name) == name,
            )
        )
        values = {
            "name": name,
            "provider": seed.llm.provider,
            "model": seed.llm.model,
            "free_use": seed.llm.free_use,
            "context_window": seed.llm.context_window,
            "max_referenced_messages": seed.llm.max_referenced_messages,
            "advanced_parameters": seed.llm.advanced_parameters,
            "description": f"Default model of {seed.name}",
        }
        if existing is not None:
            await conn.execute(
                sa.update(t.llm_configs).where(t.llm_configs.c.id == existing).values(**values)
            )
            return str(existing)
        return str(
            await conn.scalar(
                sa.insert(t.llm_configs).values(**values).returning(t.llm_configs.c.id)
            )
        )

    async def _replace_aliases(
        self,
        conn: AsyncConnection,
        personality_id: str,
        aliases: Sequence[str],
        named: HolderNamed,
    ) -> None:
        """The personality's global aliases become `aliases`, each checked by `_refuse_alias`
        (those it had already kept as they are)."""
        wanted = {normalize_alias(a): a.strip().lstrip("@").strip() for a in aliases}
        held = await _aliases_of(conn, personality_id)
        for alias in wanted.values():
            await _refuse_alias(conn, personality_id, alias, named, field="aliases", held=held)
        await conn.execute(
            sa.delete(t.personality_aliases).where(
                t.personality_aliases.c.personality_id == personality_id
            )
        )
        if wanted:
            await conn.execute(
                sa.insert(t.personality_aliases),
                [
                    {"alias": key, "display": display, "personality_id": personality_id}
                    for key, display in wanted.items()
                ],
            )

    async def _personality_by_id(self, conn: AsyncConnection, personality_id: str) -> Personality:
        row = (
            await conn.execute(
                sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.id == personality_id)
            )
        ).one()
        return personality_from_row(row._mapping)


class PersonalityWrites(AdminSqlBase):
    async def create_personality(
        self,
        values: Mapping[str, Any],
        aliases: Sequence[str],
        *,
        named: HolderNamed = _everyone_named,
    ) -> str:
        """A new personality (its slug taken: `PERSONALITY_EXISTS`; its names and aliases
        refused as `_refuse_alias_as_name`, `_refuse_extending` and `_refuse_alias` say, the
        other personality worded by `named`)."""
        async with self._catalog_write() as conn:
            await conn.execute(alias_lock())
            exists = await conn.scalar(
                sa.select(t.personalities.c.id).where(t.personalities.c.slug == values["slug"])
            )
            if exists is not None:
                raise AlreadyExists(
                    f"a personality with slug {quoted(values['slug'])} already exists",
                    reason="PERSONALITY_EXISTS",
                )
            names = (values["slug"], values["display_name"])
            await _refuse_alias_as_name(conn, names, None, named)
            await _refuse_extending(conn, names, None, values.get("owner_user_id"), named)
            personality_id = str(
                await conn.scalar(
                    sa.insert(t.personalities).values(**values).returning(t.personalities.c.id)
                )
            )
            for alias in aliases:
                await self._add_alias(conn, personality_id, alias, named)
        return personality_id

    async def update_personality(
        self,
        personality_id: str,
        values: Mapping[str, Any],
        aliases: Sequence[str] | None,
        *,
        named: HolderNamed = _everyone_named,
    ) -> None:
        """A new display name (one this personality did not have already) and the `aliases`
        (those it had are kept) are refused as `_refuse_alias_as_name`, `_refuse_extending`
        and `_refuse_alias` say, the other personality worded by `named`; `public` turned on
        checks all of its names by `_refuse_extending` (they reach everyone from then on)."""
        async with self._catalog_write() as conn:
            await conn.execute(alias_lock())
            found = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.id == personality_id)
                )
            ).one_or_none()
            current = None if found is None else personality_from_row(found._mapping)
            fresh: list[str] = []
            if "display_name" in values:
                fresh = _new_names(current, values["display_name"])
                await _refuse_alias_as_name(conn, fresh, personality_id, named)
            if current is not None and values.get("public") is True and not current.public:
                # made public: its names reach everyone now
                fresh = [current.slug, values.get("display_name", current.display_name)]
            if current is not None and fresh:
                await _refuse_extending(conn, fresh, personality_id, current.owner_user_id, named)
            if values:
                await conn.execute(
                    sa.update(t.personalities)
                    .where(t.personalities.c.id == personality_id)
                    .values(**values, updated_at=sa.func.now())
                )
            if aliases is not None:
                held = await _aliases_of(conn, personality_id)
                await conn.execute(
                    sa.delete(t.personality_aliases).where(
                        t.personality_aliases.c.personality_id == personality_id
                    )
                )
                for alias in aliases:
                    await self._add_alias(conn, personality_id, alias, named, held=held)

    async def drop_answers_in_flight(self, personality_id: str, now: datetime | None = None) -> int:
        """Deletes the personality's jobs not delivered yet, the first step of deleting it;
        how many. Each one a dead bot left half shown is handed to the bot withheld first,
        for it to say why (store/in_flight.py), due by `now` (the gateway's clock)."""
        async with self._engine.begin() as conn:
            return await drop_personality_answers(conn, personality_id, now)

    async def delete_personality(self, personality_id: str, now: datetime | None = None) -> None:
        """The personality's row (its aliases, avatar, voices, scheduled turns and other bot
        events cascade), with its answers that started since the deletion began (handed over
        as `drop_answers_in_flight` does) and what names it without a foreign key
        (`delete_references`), in one transaction. The answers handed to the bot withheld
        stay, naming no personality (`keep_withheld`)."""
        this = t.personalities.c.id == personality_id
        async with self._catalog_write() as conn:
            await drop_personality_answers(conn, personality_id, now)
            for stmt in delete_references(this):
                await conn.execute(stmt)
            await conn.execute(keep_withheld(this))
            await conn.execute(sa.delete(t.personalities).where(this))

    # ---- aliases ----

    async def add_alias(
        self, personality_id: str, alias: str, *, named: HolderNamed = _everyone_named
    ) -> None:
        """A global alias of the personality, refused as `_refuse_alias` says (the holder
        worded by `named`); one it has already is left as it is."""
        async with self._catalog_write() as conn:
            await conn.execute(alias_lock())
            await self._add_alias(conn, personality_id, alias, named)

    @staticmethod
    async def _add_alias(
        conn: AsyncConnection,
        personality_id: str,
        alias: str,
        named: HolderNamed,
        *,
        held: frozenset[str] = frozenset(),
    ) -> None:
        if not await _refuse_alias(conn, personality_id, alias, named, field="alias", held=held):
            return
        await conn.execute(
            sa.insert(t.personality_aliases).values(
                alias=normalize_alias(alias),
                display=alias.strip().lstrip("@").strip(),
                personality_id=personality_id,
            )
        )

    async def alias_owner(self, alias: str) -> Personality | None:
        async with self._autocommit.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(
                        t.personalities.c.id
                        == sa.select(t.personality_aliases.c.personality_id)
                        .where(t.personality_aliases.c.alias == normalize_alias(alias))
                        .scalar_subquery()
                    )
                )
            ).one_or_none()
        return None if row is None else personality_from_row(row._mapping)

    async def remove_alias(self, alias: str) -> None:
        async with self._catalog_write() as conn:
            await conn.execute(
                sa.delete(t.personality_aliases).where(
                    t.personality_aliases.c.alias == normalize_alias(alias)
                )
            )
