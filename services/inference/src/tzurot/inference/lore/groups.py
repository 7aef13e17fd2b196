"""Inclusion groups (SillyTavern's World Info semantics): of the entries of one group that
match on the same scan, only one goes into the prompt.

An entry names its groups in `group` (comma-separated). Among the entries of a group that
fired in one scan step (before their probability is rolled):

1. If one of them is sticky (still active), the sticky ones stay and the others go.
2. With group scoring (`use_group_scoring` on an entry), scored entries whose key score
   (primary keys found, plus the secondary ones under AND_ANY, or under AND_ALL when all are
   found) is below the best in the group go.
3. If an entry of the group went into the prompt at an earlier step (recursion), they all go.
4. Otherwise one wins: the entry with `group_override` and the highest insertion order, else
   one drawn at random weighted by `group_weight` (100 unless set).

An entry that loses in any of its groups is left out of this step.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

from tzurot.inference.lore.model import Entry

T = TypeVar("T")
DEFAULT_WEIGHT = 100


def apply_groups(
    found: Sequence[T],
    entry_of: Callable[[T], Entry],
    *,
    sticky: Callable[[T], bool],
    score: Callable[[T], int],
    activated_groups: Collection[str],
    rng: random.Random,
) -> list[tuple[T, str]]:
    """The items of `found` that survive their groups, in their order, each with how it won
    its group ('' when it was alone or in none)."""
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(found):
        for name in entry_of(item).group:
            groups.setdefault(name, []).append(index)
    lost: set[int] = set()
    won: dict[int, str] = {}
    for name, members in groups.items():
        if any(sticky(found[i]) for i in members):
            lost.update(i for i in members if not sticky(found[i]))
            continue
        scored = [i for i in members if entry_of(found[i]).use_group_scoring]
        if scored:
            scores = {i: score(found[i]) for i in members}
            best = max(scores.values())
            lost.update(i for i in scored if scores[i] < best)
        if name in activated_groups:
            lost.update(members)
            continue
        alive = [i for i in members if i not in lost]
        if len(alive) > 1:
            winner, how = _winner(alive, lambda i: entry_of(found[i]), rng)
            won[winner] = f"won group {name!r} ({how})"
            lost.update(i for i in alive if i != winner)
    return [(item, won.get(i, "")) for i, item in enumerate(found) if i not in lost]


def _winner(
    members: list[int], entry: Callable[[int], Entry], rng: random.Random
) -> tuple[int, str]:
    override = [i for i in members if entry(i).group_override]
    if override:
        return max(override, key=lambda i: (entry(i).order, -i)), "override"
    weights = [max(0, entry(i).group_weight) for i in members]
    total = sum(weights)
    if total <= 0:
        return members[0], "no weights: the first"
    roll = rng.random() * total
    running = 0
    for i, weight in zip(members, weights, strict=True):
        running += weight
        if roll < running:
            return i, f"weighted draw, weight {weight} of {total}"
    return members[-1], f"weighted draw, weight {weights[-1]} of {total}"
