"""What the name rules (name_rules.py) and the alias rules (alias_rules.py) share: the
personalities whose names may be a key, read whatever the database's collation, who owns
what (`Owners`), and how a refusal words another personality (`HolderNamed`).

A name is compared by its `mention_key` ("Dr. Who?" as "dr. who"), computed here in Python:
Postgres' `lower()` follows the database's collation, and under the C collation (the
default of the production cluster) it leaves Cyrillic or Greek capitals as they are, so the
rules would not find "Мира" for "мира". The names are read by `display_name_like`, a filter
that no collation changes, and compared here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import FINAL_SIGMA, SIGMA, mention_key, normalize_alias, same_key
from tzurot.gateway.store.rows import LIVE_PERSONALITY, PERSONALITY_COLUMNS, personality_from_row

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
