"""Who speaks in a group channel: SillyTavern's "natural order", without an LLM call.

Pure and deterministic given a seed. The rules (after SillyTavern's group chats,
`activateNaturalOrder`):

1. Anyone named in the text speaks, in the order the names appear (whole words of the
   display name, slug or an alias, case-insensitive: "hey alastor" picks Alastor).
2. Then every member, in a seeded shuffle, speaks when a roll in [0, 1) falls under their
   `talkativeness` (0 never speaks unprompted, 1 always).
3. When nobody was picked, one member is drawn at random among the talkative ones
   (talkativeness > 0), or among all when none is.
4. The last speaker is deprioritised: it is skipped by rules 2-3 (and by rule 1 when the text
   is its own, a bot-to-bot reply) unless it is the only member.
5. Each member once, at most `max_speakers` of them, in the order picked.

A chain reply (a personality answering another) uses the same rules with `minimum=0`: nobody
is drawn when nobody was named or rolled, so chains end on their own as well as at their cap.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Member:
    """A personality activated in the channel, as the selection sees it."""

    personality_id: str
    names: tuple[str, ...]  # display name, slug, aliases
    talkativeness: float


def words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def seeded_rng(*parts: object) -> random.Random:
    """A generator fixed by its parts (seed, channel, message id, depth...): same parts, same
    draws, in every process (Python's `hash` is salted per process, so it is not used)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    # Reproducible choices are the point here; nothing secret is drawn.
    return random.Random(int.from_bytes(digest[:8], "big"))  # noqa: S311


def named_in(text: str, members: Sequence[Member]) -> list[Member]:
    """Members whose name (any whole word of it) appears in `text`, in order of appearance."""
    found: list[Member] = []
    for word in words(text):
        for member in members:
            if member in found:
                continue
            if any(word in words(name) for name in member.names if name):
                found.append(member)
                break
    return found


def choose_speakers(
    members: Sequence[Member],
    text: str,
    *,
    rng: random.Random,
    max_speakers: int,
    last_speaker_id: str = "",
    minimum: int = 1,
    from_human: bool = False,
) -> list[Member]:
    """The members who answer `text`, in speaking order (see the module docstring).

    `from_human`: a person wrote `text`, so naming the last speaker still picks it (only its
    unprompted turn is deprioritised); a personality's text never picks the one who wrote it.
    """
    if not members or max_speakers <= 0:
        return []
    eligible = [m for m in members if m.personality_id != last_speaker_id] or list(members)
    picked = named_in(text, list(members) if from_human else eligible)
    shuffled = list(eligible)
    rng.shuffle(shuffled)
    for member in shuffled:
        roll = rng.random()
        if member.talkativeness > 0 and roll < member.talkativeness and member not in picked:
            picked.append(member)
    if len(picked) < minimum:
        pool = [m for m in eligible if m.talkativeness > 0] or eligible
        picked.append(pool[rng.randrange(len(pool))])
    return picked[:max_speakers]
