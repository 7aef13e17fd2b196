"""Personalities and aliases: lookups (cached in the catalog), imports, admin writes. What
refuses a name is in name_rules.py, an alias in alias_rules.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.cache import TtlCache
from tzurot.gateway.domain import LlmConfig, Personality
from tzurot.gateway.personalities import PersonalitySeed, mention_key, normalize_alias, same_key
from tzurot.gateway.rules import rules_to_json
from tzurot.gateway.store.alias_rules import aliases_of, refuse_alias
from tzurot.gateway.store.base import AdminSqlBase, SqlBase, alias_lock
from tzurot.gateway.store.in_flight import drop_personality_answers
from tzurot.gateway.store.name_lookups import (
    HolderNamed,
    alias_key,
    display_name_like,
    everyone_named,
    personalities_by_id,
)
from tzurot.gateway.store.name_rules import Names, new_names, refuse_names
from tzurot.gateway.store.personality_related import delete_references, set_talkativeness
from tzurot.gateway.store.previews import keep_withheld
from tzurot.gateway.store.rows import LIVE_PERSONALITY, PERSONALITY_COLUMNS, personality_from_row
from tzurot.runtime.errors import AlreadyExists, FailedPrecondition, quoted


async def _named(
    conn: AsyncConnection, key: str, *where: sa.ColumnElement[bool]
) -> Personality | None:
    """The live personality `key` (normalized) names best: slug, display name as written
    (normalized), display name by its `mention_key` ("luna" for "✨Luna✨"), then global
    alias, as `find_mentions` ranks them; the oldest first among equals. The display names
    are compared here, in Python (name_lookups.py says why), as keys are (`same_key`)."""
    key = same_key(key)
    p, a = t.personalities.c, t.personality_aliases.c
    by_alias = sa.exists().where(a.personality_id == p.id, alias_key(a.alias) == key)
    rows = (
        await conn.execute(
            sa.select(p.id, p.slug, p.display_name, by_alias.label("by_alias"))
            .where(sa.or_(p.slug == key, display_name_like([key]), by_alias), LIVE_PERSONALITY)
            .where(*where)
            .order_by(p.created_at, p.id)
        )
    ).all()
    ranked = [
        (rank, index, str(row.id))
        for index, row in enumerate(rows)
        if (rank := _rank(key, row.slug, row.display_name, row.by_alias)) is not None
    ]
    if not ranked:
        return None
    _, _, best = min(ranked)
    return (await personalities_by_id(conn, [best])).get(best)


def _rank(key: str, slug: str, display_name: str, by_alias: bool) -> int | None:
    if slug == key:
        return 0
    if same_key(normalize_alias(display_name)) == key:
        return 1
    if mention_key(display_name) == key:
        return 2
    return 3 if by_alias else None


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


LONGEST_NAME = 80
"""The most characters a personality's display name or alias has (admin `MAX_NAME`, a seed's
`name` and `aliases`, a card's or shapes.inc import's name cut to 80); a slug has 63 at most."""
LONGEST_KEY = 2 * LONGEST_NAME
"""The longest key (`same_key(normalize_alias(...))`) a name of a personality has: lowering
makes one character two at most ("İ" -> "i̇"). A longer one names nothing (`find_personality`)."""


class PersonalityReads(SqlBase):
    # Personalities (by name and id) and LLM configs (by id). Every write to them in this
    # process clears it (AdminStore shares it); other replicas' writes show within the TTL.
    catalog: TtlCache[Personality | LlmConfig]
    # The platform id of the user the operator's shapes.inc imports belong to (their default
    # owner, `ShapesAdmin._owner_platform_id("")`): with the ownerless personalities (seed
    # files), one owner for the name rules (name_lookups.Owners). Set by the wiring; "": none.
    operator_platform_id: str = ""

    async def find_personality(
        self, name: str, *, visible_to: str | None = None
    ) -> Personality | None:
        """By slug, display name (as written, then by its `mention_key`: "luna" finds
        "✨Luna✨") or alias, case-insensitively, in that order of preference.

        Cached (`catalog`): a hit for its TTL (5 s), a miss for 1 s at most (a personality
        another replica creates is found within a second), both until this process writes to
        personalities or aliases. A name longer than any a personality can have
        (`LONGEST_KEY`) is a miss, neither asked nor kept.

        `visible_to`: rank only among the public personalities and that user's own ("" for
        public ones only), so someone else's private personality never hides one the user
        may use (not cached: asked only when the first match is someone else's private one).
        """
        key = same_key(normalize_alias(name))
        if len(key) > LONGEST_KEY:
            return None  # no personality has so long a name: nothing to ask or to keep
        if visible_to is not None:
            return await self._find_visible_personality(key, visible_to)
        if self.catalog.missed(("name", key)):
            return None
        cached = self.catalog.get(("name", key))
        if isinstance(cached, Personality):
            return cached
        generation = self.catalog.generation
        async with self._autocommit.connect() as conn:
            personality = await _named(conn, key)
        if personality is None:
            # A miss is kept too (apart from the hits, which misses never evict; cleared by
            # every write to personalities or aliases), so a name only a personal alias
            # knows does not scan the display names at each use. For 1 s at most: a
            # personality another replica creates is found within a second.
            self.catalog.put_miss(("name", key), generation)
            return None
        self.catalog.put(("name", key), personality, generation)
        self.catalog.put(("personality", personality.id), personality, generation)
        return personality

    async def _find_visible_personality(self, key: str, user_id: str) -> Personality | None:
        p = t.personalities.c
        visible = p.public if not user_id else sa.or_(p.public, p.owner_user_id == user_id)
        async with self._autocommit.connect() as conn:
            return await _named(conn, key, visible)

    async def refuse_alias_as_name(
        self,
        slug: str,
        name: str,
        *,
        named: HolderNamed = everyone_named,
        aliases: Sequence[str] = (),
        public: bool = True,
        owner_platform_id: str = "",
    ) -> None:
        """What `import_personality` of `slug` named `name` with `aliases` (`public`, a new
        one owned by the user of `owner_platform_id`, "": the operator) would refuse in its
        names and aliases (`refuse_names`, `refuse_alias`), checked now (a dry run's)."""
        async with self._autocommit.connect() as conn:
            found = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.slug == slug)
                )
            ).one_or_none()
            existing = None if found is None else personality_from_row(found._mapping)
            owner: str | None = None
            if existing is not None:
                owner = existing.owner_user_id
            elif owner_platform_id and owner_platform_id != self.operator_platform_id:
                found_owner = await conn.scalar(
                    sa.select(t.users.c.id).where(t.users.c.platform_user_id == owner_platform_id)
                )
                owner = "" if found_owner is None else str(found_owner)  # "": owns nothing
            made_public = existing is not None and public and not existing.public
            await refuse_names(
                conn,
                Names(slug, name)
                if made_public
                else new_names(existing, slug=slug, display_name=name),
                None if existing is None else existing.id,
                owner_user_id=owner,
                public=public,
                named=named,
                made_public=made_public,
                operator_platform_id=self.operator_platform_id,
            )
            held = frozenset() if existing is None else await aliases_of(conn, existing.id)
            for alias in aliases:
                await refuse_alias(
                    conn,
                    None if existing is None else existing.id,
                    alias,
                    named,
                    field="aliases",
                    held=held,
                    owner_user_id=owner,
                    operator_platform_id=self.operator_platform_id,
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
        named: HolderNamed = everyone_named,
    ) -> tuple[Personality, bool]:
        """Creates or updates a personality (by slug) with its aliases and default config.

        `extra_values` are more personality columns (card, custom_fields, voice_id); `then`
        runs in the same transaction with the personality's id (its card assets, lorebook).
        `may_replace` is shown the personality already at the slug, read in the transaction
        (locked): it raises to refuse the import (someone else's personality). A slug or
        name that another personality's global alias already is, and that the personality at
        the slug does not have yet, is refused (`NAME_IS_AN_ALIAS`, the holder worded by
        `named`): `@name` would otherwise move from the alias's personality to this one.
        Names and aliases are refused as `refuse_names` and `refuse_alias` say (those the
        personality had already are kept; all of its names are checked again when the
        import makes it public).
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
            made_public = existing is not None and seed.public and not existing.public
            await refuse_names(
                conn,
                # made public: its names reach everyone now
                Names(slug, seed.name)
                if made_public
                else new_names(existing, slug=slug, display_name=seed.name),
                None if existing is None else existing.id,
                owner_user_id=owner_user_id if existing is None else existing.owner_user_id,
                public=seed.public,
                named=named,
                made_public=made_public,
                operator_platform_id=self.operator_platform_id,
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
        """The personality's global aliases become `aliases`, each checked by `refuse_alias`
        (those it had already kept as they are)."""
        wanted = {normalize_alias(a): a.strip().lstrip("@").strip() for a in aliases}
        held = await aliases_of(conn, personality_id)
        for alias in wanted.values():
            await refuse_alias(
                conn,
                personality_id,
                alias,
                named,
                field="aliases",
                held=held,
                operator_platform_id=self.operator_platform_id,
            )
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
    operator_platform_id: str = ""  # as PersonalityReads'

    async def create_personality(
        self,
        values: Mapping[str, Any],
        aliases: Sequence[str],
        *,
        named: HolderNamed = everyone_named,
    ) -> str:
        """A new personality (its slug taken: `PERSONALITY_EXISTS`; its names and aliases
        refused as `refuse_names` and `refuse_alias` say, the other personality worded by
        `named`)."""
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
            await refuse_names(
                conn,
                Names(values["slug"], values["display_name"]),
                None,
                owner_user_id=values.get("owner_user_id"),
                public=bool(values.get("public", True)),
                named=named,
                operator_platform_id=self.operator_platform_id,
            )
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
        named: HolderNamed = everyone_named,
        talkativeness: float | None = None,
    ) -> None:
        """A new display name (one this personality did not have already) and the `aliases`
        (those it had are kept) are refused as `refuse_names` and `refuse_alias` say, the
        other personality worded by `named`; `public` turned on checks all of its names by
        every rule of `refuse_names` (they reach everyone from then on). `talkativeness` is
        written in the same transaction: a refusal leaves it as it was too."""
        async with self._catalog_write() as conn:
            await conn.execute(alias_lock())
            found = (
                await conn.execute(
                    sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.id == personality_id)
                )
            ).one_or_none()
            current = None if found is None else personality_from_row(found._mapping)
            if current is not None:
                public = bool(values.get("public", current.public))
                made_public = public and not current.public
                names = (
                    # made public: its names reach everyone now
                    Names(current.slug, values.get("display_name", current.display_name))
                    if made_public
                    else new_names(current, display_name=values["display_name"])
                    if "display_name" in values
                    else Names()
                )
                if names != Names():
                    await refuse_names(
                        conn,
                        names,
                        personality_id,
                        owner_user_id=current.owner_user_id,
                        public=public,
                        named=named,
                        made_public=made_public,
                        operator_platform_id=self.operator_platform_id,
                    )
            if values:
                await conn.execute(
                    sa.update(t.personalities)
                    .where(t.personalities.c.id == personality_id)
                    .values(**values, updated_at=sa.func.now())
                )
            if aliases is not None:
                held = await aliases_of(conn, personality_id)
                await conn.execute(
                    sa.delete(t.personality_aliases).where(
                        t.personality_aliases.c.personality_id == personality_id
                    )
                )
                for alias in aliases:
                    await self._add_alias(conn, personality_id, alias, named, held=held)
            if talkativeness is not None and current is not None:
                await conn.execute(set_talkativeness(personality_id, talkativeness))

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
        self, personality_id: str, alias: str, *, named: HolderNamed = everyone_named
    ) -> None:
        """A global alias of the personality, refused as `refuse_alias` says (the holder
        worded by `named`); one it has already is left as it is."""
        async with self._catalog_write() as conn:
            await conn.execute(alias_lock())
            await self._add_alias(conn, personality_id, alias, named)

    async def _add_alias(
        self,
        conn: AsyncConnection,
        personality_id: str,
        alias: str,
        named: HolderNamed,
        *,
        held: frozenset[str] = frozenset(),
    ) -> None:
        if not await refuse_alias(
            conn,
            personality_id,
            alias,
            named,
            field="alias",
            held=held,
            operator_platform_id=self.operator_platform_id,
        ):
            return
        await conn.execute(
            sa.insert(t.personality_aliases).values(
                alias=normalize_alias(alias),
                display=alias.strip().lstrip("@").strip(),
                personality_id=personality_id,
            )
        )

    async def alias_owner(self, alias: str) -> Personality | None:
        """The personality with the global alias `alias` (by key, `same_key`): the one whose
        alias is written so first. Two aliases that differ only by a final sigma could both
        be stored before keys were compared so (one of each owner); each names its own."""
        a = t.personality_aliases.c
        written = normalize_alias(alias)
        stmt = sa.select(*PERSONALITY_COLUMNS).where(
            t.personalities.c.id
            == sa.select(a.personality_id)
            .where(alias_key(a.alias) == same_key(written))
            .order_by(a.alias != written, a.alias)
            .limit(1)
            .scalar_subquery()
        )
        async with self._autocommit.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else personality_from_row(row._mapping)

    async def remove_alias(self, alias: str, personality_id: str) -> bool:
        """Removes the personality's global alias `alias` (by key): only its own, whatever
        another personality stored of the same key before keys were compared so. False when
        it had none such."""
        a = t.personality_aliases.c
        async with self._catalog_write() as conn:
            removed = await conn.execute(
                sa.delete(t.personality_aliases).where(
                    alias_key(a.alias) == same_key(normalize_alias(alias)),
                    a.personality_id == personality_id,
                )
            )
        return bool(removed.rowcount)
