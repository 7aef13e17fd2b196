"""What refuses a personality's names (slug, display name) that would take another
personality's @mentions: names and global aliases are one namespace (`find_mentions` puts
names before global aliases, then the longest match). Run under the alias lock, in the
write's transaction. Names are compared by key as name_lookups.py reads them; what refuses
an alias is in alias_rules.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import (
    continues_word,
    mention_key,
    normalize_alias,
    same_key,
    word_prefixes,
)
from tzurot.gateway.store.id_names import refuse_id_shaped
from tzurot.gateway.store.name_lookups import (
    HIDDEN,
    HolderNamed,
    Owners,
    _shown,
    alias_key,
    names_among,
    owners,
    personalities_by_id,
)
from tzurot.gateway.store.rows import LIVE_PERSONALITY
from tzurot.runtime.errors import AlreadyExists, InvalidArgument, quoted


class Names(NamedTuple):
    """A personality's names that the rules check (None: not this one)."""

    slug: str | None = None
    display_name: str | None = None
    written_only: bool = False
    """The display name's key is the personality's already (a rename kept from before the
    rules, "Sage 🌙" to "Sage 🌟"): only the name as written is new (`new_names`)."""


def _keys_of(names: Names) -> dict[str, str]:
    """The keys of `names` (new to a personality), each with its name: a slug as written, as
    it is @mentioned ("sage-" is not "@sage"), a display name by its `mention_key`;
    INVALID_ARGUMENT `NAME_NOT_MENTIONABLE` for a display name without one (no letter or
    digit: '🌙', '!!!')."""
    keys: dict[str, str] = {}
    if names.slug:
        keys[same_key(normalize_alias(names.slug))] = names.slug
    for name in [] if names.display_name is None else [names.display_name]:
        key = mention_key(name)
        if not key:
            raise InvalidArgument(
                "name",
                f"{quoted(name.strip())} cannot be a name: it has no letter or digit, so "
                "nothing to @mention it by; give it a name with at least one",
                reason="NAME_NOT_MENTIONABLE",
            )
        keys.setdefault(key, name.strip())
    return dict(sorted(keys.items()))


async def refuse_names(
    conn: AsyncConnection,
    names: Names,
    personality_id: str | None,
    *,
    owner_user_id: str | None,
    public: bool,
    named: HolderNamed,
    made_public: bool = False,
    operator_platform_id: str = "",
) -> None:
    """What refuses `names` (a personality's slug and display name: those new to it, or all
    of them when it is `made_public`), each by its key (`_keys_of`):

    - INVALID_ARGUMENT `NAME_NOT_MENTIONABLE`, ALREADY_EXISTS `NAME_IS_AN_ALIAS` and
      `NAME_BEGINS_AN_ALIAS`: `_refuse_alias_as_name`, whatever the visibility (aliases are
      one global namespace);
    - only for a `public` personality (whose names reach everyone; a private one's reach
      its owner alone, so they take nobody's mentions): ALREADY_EXISTS `NAME_TAKEN` and
      `NAME_EXTENDS_A_NAME` (`_refuse_visible_names`).

    Made public (`names` are then its slug and display name), a refusal says so ("'Luna
    Lovegood' cannot be made public: …"), keeping its reason. The second kind counts only
    other owners' public personalities, whoever asks (a private name reaches its owner alone,
    so a name beside it takes nobody's mentions: a superuser, who sees it, is not refused by
    it either); personalities of one owner (`owner_user_id`, the operator's as `Owners`
    says) are exempt. Other personalities are worded by `named`."""
    refuse_id_shaped("slug", names.slug)
    refuse_id_shaped("name", names.display_name)
    written = names.display_name if names.written_only else None
    keys = _keys_of(names._replace(display_name=None) if written is not None else names)
    if not keys and not (written and public):
        return
    try:
        if keys:
            await _refuse_alias_as_name(conn, keys, personality_id, named)
        if public:
            who = await owners(conn, operator_platform_id)
            if keys:
                await _refuse_visible_names(
                    conn, keys, personality_id, owner_user_id=owner_user_id, who=who, named=named
                )
            if written:
                await _refuse_written_name(
                    conn, written, personality_id, owner_user_id=owner_user_id, who=who, named=named
                )
    except AlreadyExists as exc:
        if not made_public:
            raise
        shown = names.display_name if names.display_name is not None else names.slug or ""
        raise AlreadyExists(
            f"{quoted(shown.strip())} cannot be made public: {exc.message}",
            reason=exc.reason,
            metadata=exc.metadata,
        ) from None


async def _refuse_alias_as_name(
    conn: AsyncConnection,
    keys: dict[str, str],
    personality_id: str | None,
    named: HolderNamed,
) -> None:
    """What refuses a personality's names, each by its key (`_keys_of`: how @mentions read
    it, "Dr. Who?" as "dr. who"):

    - ALREADY_EXISTS `NAME_IS_AN_ALIAS`: one that is a global alias of another live
      personality (`@name` would mean either one, and a newcomer would take the alias over);
    - ALREADY_EXISTS `NAME_BEGINS_AN_ALIAS`: one another's global alias begins with, then
      more words or punctuation (a new "The" against "the oracle": `find_mentions` puts
      names first, so "@the oracle" would go to the newcomer). The alias is quoted only when
      its personality is shown (`named`): the caller typed the name, not the alias's rest."""
    a = t.personality_aliases.c
    others: list[sa.ColumnElement[bool]] = [LIVE_PERSONALITY]
    if personality_id is not None:
        others.append(a.personality_id != personality_id)
    stmt = (
        sa.select(a.alias, a.display, a.personality_id)
        .join(t.personalities, t.personalities.c.id == a.personality_id)
        .where(alias_key(a.alias).in_(list(keys)), *others)
        .order_by(a.alias)
        .limit(1)
    )
    row = (await conn.execute(stmt)).one_or_none()
    if row is not None:
        holder = (await personalities_by_id(conn, [row.personality_id]))[str(row.personality_id)]
        raise AlreadyExists(
            f"@{row.display} is already an alias of {named(holder)}, so a personality cannot "
            f"take {quoted(row.alias)} as its name (@{row.display} would mean either one); "
            "choose another name",
            reason="NAME_IS_AN_ALIAS",
        )
    for begun in keys:
        row = await _alias_begun_by(conn, begun, others)
        if row is None:
            continue
        holder = (await personalities_by_id(conn, [row.personality_id]))[str(row.personality_id)]
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


async def _alias_begun_by(
    conn: AsyncConnection, key: str, others: Sequence[sa.ColumnElement[bool]]
) -> sa.Row[Any, Any, Any] | None:
    """The first (by alias) of the aliases that begin with `key` as a word: the character
    after it ends a word (`continues_word`, which Postgres cannot tell under every collation).
    Exact whatever the aliases: the characters that follow the key are read first (distinct,
    so few), then an alias with one of those that end a word; no number of aliases that go on
    with the word ("アリスア…" before "アリス・マーガトロイド") can hide it."""
    a = t.personality_aliases.c
    alias = alias_key(a.alias)
    after = sa.func.substr(alias, len(key) + 1, 1)
    begins = [alias.startswith(key, autoescape=True), sa.func.length(alias) > len(key), *others]
    joined = sa.select(after).join(t.personalities, t.personalities.c.id == a.personality_id)
    following = (await conn.execute(joined.where(*begins).distinct())).scalars().all()
    ending = sorted(char for char in following if not continues_word(char))
    if not ending:
        return None
    return (
        await conn.execute(
            sa.select(a.alias, a.display, a.personality_id)
            .join(t.personalities, t.personalities.c.id == a.personality_id)
            .where(*begins, after.in_(ending))
            .order_by(a.alias)
            .limit(1)
        )
    ).one_or_none()


async def _refuse_visible_names(
    conn: AsyncConnection,
    keys: dict[str, str],
    personality_id: str | None,
    *,
    owner_user_id: str | None,
    who: Owners,
    named: HolderNamed,
) -> None:
    """For the names of a public personality (by their keys, `_keys_of`), against another
    live personality of another owner (`who`), public (a private one's names reach its owner
    alone, and nobody else's mentions: whoever asks, even a superuser who sees it):

    - ALREADY_EXISTS `NAME_TAKEN`: one whose key is that personality's name's key ("Sage 🌙"
      against Sage): two personalities would answer to one @mention;
    - ALREADY_EXISTS `NAME_EXTENDS_A_NAME`: one that is that personality's name or global
      alias followed by more words or punctuation ("Sage Please", "Sage's" against Sage):
      among names the longest wins in `find_mentions`, so it would take "@Sage please help"
      from Sage (review s5 H1).

    An alias of any personality refuses (aliases are one global namespace), worded `HIDDEN`
    when the caller may not see it (`named`)."""
    prefixes = sorted({prefix for key in keys for prefix in word_prefixes(key)} - set(keys))
    for holder, begun in await names_among(conn, [*keys, *prefixes], personality_id):
        if not holder.public or who.same(holder.owner_user_id, owner_user_id):
            continue
        if begun in keys:
            raise AlreadyExists(
                f"@{begun} is already the name of {named(holder)}, so another personality "
                f"cannot be named {quoted(keys[begun])} (@{begun} would mean either one); "
                "choose another name",
                reason="NAME_TAKEN",
            )
        raise AlreadyExists(
            f"@{begun} is the name of {named(holder)}, so a personality cannot take a name "
            f"that begins with it and goes on (@mentions such as '@{begun} …' would go to it "
            "instead); choose another name",
            reason="NAME_EXTENDS_A_NAME",
        )
    if not prefixes:
        return
    a = t.personality_aliases.c
    rows = (
        await conn.execute(
            sa.select(a.alias, a.personality_id)
            .join(t.personalities, t.personalities.c.id == a.personality_id)
            .where(
                alias_key(a.alias).in_(prefixes),
                LIVE_PERSONALITY,
                *([] if personality_id is None else [a.personality_id != personality_id]),
            )
            .order_by(a.alias)
        )
    ).all()
    holders = await personalities_by_id(conn, [row.personality_id for row in rows])
    for row in rows:
        holder = holders[str(row.personality_id)]
        if who.same(holder.owner_user_id, owner_user_id):
            continue
        raise AlreadyExists(
            f"@{row.alias} is an alias of {named(holder)}, so a personality cannot take a name "
            f"that begins with it and goes on (@mentions such as '@{row.alias} …' would go to "
            "it instead); choose another name",
            reason="NAME_EXTENDS_A_NAME",
        )


async def _refuse_written_name(
    conn: AsyncConnection,
    written: str,
    personality_id: str | None,
    *,
    owner_user_id: str | None,
    who: Owners,
    named: HolderNamed,
) -> None:
    """ALREADY_EXISTS `NAME_TAKEN` for a display name whose key the personality has already
    (`Names.written_only`) when, as written, it is another owner's public personality's name
    (its slug, display name or that name's key): the one @mention it adds would mean either
    one. Its key was the personality's before, so nothing else is new."""
    key = same_key(normalize_alias(written))
    for holder, _ in await names_among(conn, [key], personality_id):
        if not holder.public or who.same(holder.owner_user_id, owner_user_id):
            continue
        raise AlreadyExists(
            f"@{key} is already the name of {named(holder)}, so another personality cannot "
            f"be named {quoted(written.strip())} (@{key} would mean either one); choose "
            "another name",
            reason="NAME_TAKEN",
        )


def new_names(
    existing: Personality | None, *, slug: str | None = None, display_name: str | None = None
) -> Names:
    """Those of the names the personality (None: a new one) does not go by already, as
    written (normalized: "sage" to "Sage" is not new): a name it had before the rule (tied
    with another's alias or name) is kept, not refused at each update. A display name is new
    by what it adds to the personality's @mentions (`find_mentions` ranks a slug, then a
    display name as written, then its key):

    - as written it is the slug or the old display name: nothing new;
    - its key is one the personality had (its slug, its display name as written or by key)
      and it is not itself that key ("Sage 🌙" to "Sage 🌟"): only the name as written is
      new (`Names.written_only`), checked against the others' names alone;
    - otherwise all of it, so "Sage!" renamed "Sage" (the key, which ranks above it as a
      name as written) is checked as new."""
    if existing is None:
        return Names(slug, display_name)
    old_written = same_key(normalize_alias(existing.display_name))
    had = {existing.slug, old_written}
    keys = {*had, mention_key(existing.display_name)}

    def new(name: str | None) -> str | None:
        return None if name is None or same_key(normalize_alias(name)) in had else name

    display = new(display_name)
    written_only = False
    if display is not None:
        written, key = same_key(normalize_alias(display)), mention_key(display)
        written_only = key in keys and written != key
    return Names(new(slug), display, written_only)
