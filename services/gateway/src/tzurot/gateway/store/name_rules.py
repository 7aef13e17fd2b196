"""One namespace for personalities' names (slug, display name) and global aliases: what
refuses a name or an alias that would take another personality's @mentions (`find_mentions`
puts names before global aliases, then the longest match). Run under the alias lock, in the
write's transaction.

A name is compared by its `mention_key` ("Dr. Who?" as "dr. who"), computed here in Python:
Postgres' `lower()` follows the database's collation, and under the C collation (the
default of the production cluster) it leaves Cyrillic or Greek capitals as they are, so the
rules would not find "Мира" for "мира". The names are read by `display_name_like`, a filter
that no collation changes, and compared here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import (
    FINAL_SIGMA,
    SIGMA,
    continues_word,
    edges_problem,
    mention_key,
    normalize_alias,
    same_key,
    word_prefixes,
)
from tzurot.gateway.store.id_names import refuse_id_shaped
from tzurot.gateway.store.rows import LIVE_PERSONALITY, PERSONALITY_COLUMNS, personality_from_row
from tzurot.runtime.errors import AlreadyExists, InvalidArgument, quoted

HolderNamed = Callable[[Personality], str]
"""How an error names a personality to the caller: its display name when they may see it,
else words that do not depend on its name (`HIDDEN`: admin/base.py `named_for`). `_shown`
reads from it whether the caller may see a personality: a name of a personality they may not
see is never the reason for a refusal of an alias (that would tell them it exists), an alias
is (aliases are one global namespace, so adding the alias itself would tell them anyway),
worded `HIDDEN`."""

HIDDEN = "another personality"


def everyone_named(holder: Personality) -> str:
    """The default: the operator's view (seed files, tests), every personality named."""
    return holder.display_name


_UNNAMED = "\x00"
"""A display name no personality has (a name needs a letter or digit): `_shown` asks `named`
for a copy of the holder named so."""


def _shown(named: HolderNamed, holder: Personality) -> bool:
    """Whether the caller may see `holder`: `named` gives its display name, whatever that is,
    not words of its own. Never decided by the words (a personality really named "another
    personality" is shown)."""
    return named(replace(holder, display_name=_UNNAMED)) == _UNNAMED


def alias_key(alias: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """A stored alias (`normalize_alias`) as keys are compared (`same_key`), in SQL. The
    characters are written into the statement, not bound, so it is the expression of the
    index on global aliases' keys (migration 0030, `text_pattern_ops`: equality and
    `LIKE 'key%'`) whatever plan a prepared statement gets."""
    return sa.func.translate(
        alias, sa.literal_column(f"'{FINAL_SIGMA}'"), sa.literal_column(f"'{SIGMA}'"), type_=sa.Text
    )


# ---- reading display names whatever the collation ----

LOWERED_FROM = {
    "k": "\u212a",  # KELVIN SIGN
    "å": "\u212b",  # ANGSTROM SIGN
    "θ": "\u03f4",  # GREEK CAPITAL THETA SYMBOL
    "ω": "\u2126",  # OHM SIGN
    "ß": "\u1e9e",  # LATIN CAPITAL LETTER SHARP S
    "i": "\u0130",  # LATIN CAPITAL LETTER I WITH DOT ABOVE: lowered to 'i' + U+0307
}
"""The characters `str.lower()` turns into a character whose `upper()` and `title()` are not
them (tests/unit/gateway/test_name_rules.py checks the list against the Unicode database)."""

_DOT_ABOVE = "\u0307"
"""What 'İ' lowers to after its 'i': in a key it may stand for nothing in the name."""

_BRACKET_SPECIAL = frozenset("\\]^-[")


def _char_class(char: str) -> str:
    """A Postgres regular-expression item matching each character `str.lower()` turns into
    `char` (and `char` itself): explicit characters, so no collation changes it."""
    chars = {char, *LOWERED_FROM.get(char, "")}
    if char == SIGMA:  # a name's final sigma too (`same_key`)
        chars.add(FINAL_SIGMA)
    chars.update(other for other in (char.upper(), char.title()) if len(other) == 1)
    body = "".join(f"\\{c}" if c in _BRACKET_SPECIAL else c for c in sorted(chars))
    return f"[{body}]" + ("?" if char == _DOT_ABOVE else "")


def key_pattern(key: str) -> str:
    """A Postgres regular expression (`~`) found in every text whose `mention_key` or
    `normalize_alias` contains `key` (a normalized key), and in few others: its words in
    order, each in any case, with anything between them (the text's whitespace may be any)."""
    return ".+".join("".join(map(_char_class, word)) for word in key.split(" ") if word)


def display_name_like(keys: Iterable[str]) -> sa.ColumnElement[bool]:
    """The personalities whose display name may have one of `keys` as its key (or as its
    text normalized): read them and compare in Python, as `mention_key` does."""
    patterns = sorted({key_pattern(key) for key in keys if key})
    if not patterns:
        return sa.false()
    return t.personalities.c.display_name.op("~")("|".join(f"(?:{p})" for p in patterns))


async def personalities_by_id(conn: AsyncConnection, ids: Iterable[Any]) -> dict[str, Personality]:
    rows = (
        await conn.execute(
            sa.select(*PERSONALITY_COLUMNS).where(t.personalities.c.id.in_(list(set(ids))))
        )
    ).all()
    found = [personality_from_row(row._mapping) for row in rows]
    return {p.id: p for p in found}


async def names_among(
    conn: AsyncConnection, keys: Sequence[str], personality_id: str | None
) -> list[tuple[Personality, str]]:
    """The live personalities (but `personality_id`) whose slug, display name as written
    (normalized) or display name's `mention_key` is one of `keys` (as keys are compared:
    `same_key`), each with that key, the oldest first. The keys are computed here, as
    `find_mentions` computes them (`display_name_like` reads the few display names that may
    match)."""
    if not keys:
        return []
    p = t.personalities.c
    rows = (
        await conn.execute(
            sa.select(p.id, p.slug, p.display_name)  # the few matching read whole below
            .where(
                sa.or_(p.slug.in_(keys), display_name_like(keys)),
                LIVE_PERSONALITY,
                *([] if personality_id is None else [p.id != personality_id]),
            )
            .order_by(p.created_at, p.id)
        )
    ).all()
    matched: list[tuple[str, str]] = []
    for row in rows:
        display = row.display_name
        names = (row.slug, same_key(normalize_alias(display)), mention_key(display))
        key = next((k for k in names if k in keys), None)
        if key is not None:
            matched.append((str(row.id), key))
    whole = await personalities_by_id(conn, [found_id for found_id, _ in matched])
    return [(whole[found_id], key) for found_id, key in matched]


# ---- owners ----


class Owners:
    """Who owns what, for "personalities of one owner may share or extend their names": a
    user, or the operator, whose personalities are the ownerless ones (seed files, cards the
    operator imports) and those of `operator_user_id` (the user shapes.inc imports belong to
    when no owner is given: `ShapesAdmin._owner_platform_id("")`), one owner."""

    def __init__(self, operator_user_id: str | None) -> None:
        self._operator = {None, operator_user_id} if operator_user_id else {None}

    def same(self, one: str | None, other: str | None) -> bool:
        return one == other or (one in self._operator and other in self._operator)


async def owners(conn: AsyncConnection, operator_platform_id: str) -> Owners:
    """The `Owners` of a deployment whose operator's imports go to `operator_platform_id`
    ("": none, the ownerless personalities alone are the operator's)."""
    if not operator_platform_id:
        return Owners(None)
    found = await conn.scalar(
        sa.select(t.users.c.id).where(t.users.c.platform_user_id == operator_platform_id)
    )
    return Owners(None if found is None else str(found))


# ---- names ----


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


# ---- aliases ----


async def _owner_of(
    conn: AsyncConnection,
    personality_id: str | None,
    owner_user_id: str | None,
    operator_platform_id: str,
) -> Callable[[Personality], bool]:
    """Whether a personality is of the same owner (`Owners`) as the personality
    `personality_id` (None: one of `owner_user_id` not written yet)."""
    if personality_id is not None:
        p = t.personalities.c
        found = await conn.scalar(sa.select(p.owner_user_id).where(p.id == personality_id))
        owner_user_id = None if found is None else str(found)
    who = await owners(conn, operator_platform_id)
    return lambda holder: who.same(holder.owner_user_id, owner_user_id)


def _refuse_edges(field: str, name: str) -> None:
    problem = edges_problem(name)
    if problem is not None:
        raise InvalidArgument(
            field,
            f"{quoted(name.strip())} cannot be an alias: {problem}",
            reason="NAME_NOT_A_WORD",
        )


async def aliases_of(conn: AsyncConnection, personality_id: str) -> frozenset[str]:
    a = t.personality_aliases.c
    stmt = sa.select(a.alias).where(a.personality_id == personality_id)
    return frozenset((await conn.execute(stmt)).scalars())


async def refuse_alias(
    conn: AsyncConnection,
    personality_id: str | None,
    alias: str,
    named: HolderNamed,
    *,
    field: str,
    held: frozenset[str] = frozenset(),
    owner_user_id: str | None = None,
    operator_platform_id: str = "",
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

    A name counts when its personality is public, or private and of the owner of the
    personality the alias is for (its `owner_user_id` when it is not written yet, None: the
    operator's; the operator's personalities are one owner, `Owners`), whoever asks: another
    owner's private name reaches that owner alone, who (with whoever sees it: a superuser,
    the operator) reads it before any global alias (`find_mentions`), so the alias takes
    nothing from it, and it refuses the operator's seed no more than a user's alias. An
    alias refuses whatever its personality, worded `HIDDEN` when the caller may not see it
    (`named`). `held` are the aliases the personality had before this write (normalized):
    kept whatever the rules say now, as names are (`new_names`)."""
    refuse_id_shaped(field, alias)
    key = same_key(normalize_alias(alias))
    display = alias.strip().lstrip("@").strip()
    p, a = t.personalities.c, t.personality_aliases.c
    owners_of = sa.select(a.personality_id).where(alias_key(a.alias) == key)
    owner = await conn.scalar(owners_of.order_by(a.personality_id != personality_id).limit(1))
    if owner is not None and str(owner) == personality_id:
        return False
    if key in {same_key(kept) for kept in held}:
        return True
    _refuse_edges(field, display)
    if owner is not None:
        holder = (await personalities_by_id(conn, [owner]))[str(owner)]
        shown = _shown(named, holder)
        raise AlreadyExists(
            f"alias {quoted(key)} already belongs to "
            + (f"personality {quoted(holder.slug)}" if shown else HIDDEN),
            reason="ALIAS_TAKEN",
            metadata={"personality": holder.slug} if shown else None,
        )
    prefixes = word_prefixes(key)
    candidates = [key, *prefixes]
    names = await names_among(conn, candidates, personality_id)
    aliases = (
        (
            await conn.execute(
                sa.select(a.alias, a.display, a.personality_id)
                .join(t.personalities, p.id == a.personality_id)
                .where(
                    alias_key(a.alias).in_(prefixes),
                    LIVE_PERSONALITY,
                    *([] if personality_id is None else [a.personality_id != personality_id]),
                )
                .order_by(a.alias)
            )
        ).all()
        if prefixes
        else []
    )
    holders = await personalities_by_id(conn, [row.personality_id for row in aliases])
    same_owner: Callable[[Personality], bool] | None = None
    for holder, begun in names:
        if not holder.public:
            if same_owner is None:
                same_owner = await _owner_of(
                    conn, personality_id, owner_user_id, operator_platform_id
                )
            if not same_owner(holder):
                continue
        display_name = holder.display_name
        if key in (holder.slug, same_key(normalize_alias(display_name)), mention_key(display_name)):
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
