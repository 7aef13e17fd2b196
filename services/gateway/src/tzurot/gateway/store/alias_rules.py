"""What refuses a global alias that would take another personality's @mentions: names
and global aliases are one namespace (`find_mentions` puts names before global aliases, then
the longest match). Run under the alias lock, in the write's transaction. Aliases are
compared by key as name_lookups.py reads them; what refuses a name is in name_rules.py."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tzurot.gateway import tables as t
from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import (
    edges_problem,
    mention_key,
    normalize_alias,
    same_key,
    word_prefixes,
)
from tzurot.gateway.store.id_names import refuse_id_shaped
from tzurot.gateway.store.name_lookups import (
    HIDDEN,
    HolderNamed,
    _shown,
    alias_key,
    names_among,
    owners,
    personalities_by_id,
)
from tzurot.gateway.store.rows import LIVE_PERSONALITY
from tzurot.runtime.errors import AlreadyExists, InvalidArgument, quoted


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
