"""Who speaks in a group channel: SillyTavern's "natural order", without an LLM call.

Pure and deterministic given a seed. The rules (after SillyTavern's group chats,
`activateNaturalOrder`):

1. Anyone named in the text speaks, in the order the names appear (a whole display name,
   slug or alias, or the display name's first word, case-insensitive: "hey alastor" picks
   Alastor). SillyTavern takes any word of a name; a whole alias is safer ("the night
   queen" must not answer every "the"). A name inside an e-mail address, a link or
   Discord's code names nobody ("ada@sage.org", "youtube.com/@sage", "`sage`"), as such an
   '@' mentions nobody (tzurot.runtime.mention_starts).
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

from tzurot.runtime.emphasis import Emphasis

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


def _find(tokens: Sequence[str], phrase: Sequence[str]) -> int | None:
    """Where the words of `phrase` first appear together in `tokens`."""
    size = len(phrase)
    if not size:
        return None
    for start in range(len(tokens) - size + 1):
        if list(tokens[start : start + size]) == list(phrase):
            return start
    return None


def _words_at(text: str, where: Sequence[int]) -> tuple[list[str], list[int]]:
    """The words of `text` (as `words` gives them) and where each begins (`where` tells
    where each character of `text` is written)."""
    found = list(_WORD.finditer(text))
    return [w[0].casefold() for w in found], [where[w.start()] for w in found]


def named_in(text: str, members: Sequence[Member]) -> list[Member]:
    """Members named in `text`, in order of appearance: a whole name (display name, slug or
    alias, as whole words: "the night queen", not "the") or the display name's first word
    ("Sage" for "Sage Wren"), case-insensitive; none inside an e-mail address, a link or
    Discord's code (`prose`). A name is read in the text as written ("_x_" names a member
    named so) and as Discord shows it, without the '_'s of its italics or underline
    (tzurot.runtime.emphasis): "_waves at Sage_" and "__Sage__" name Sage, "sage_" and
    "self._sage", where nothing pairs with the '_', do not; nor do "sage_bot_" and
    "the_sage_", which Discord shows as one word ("sagebot", "thesage")."""
    emphasis = Emphasis(text)
    readings = [_words_at(emphasis.read, range(len(emphasis.read)))]
    shown, where = emphasis.shown()
    if shown is not emphasis.read:
        readings.append(_words_at(shown, where))
    found: list[tuple[int, int, Member]] = []
    for index, member in enumerate(members):
        phrases = [words(name) for name in member.names if name]
        if phrases and phrases[0]:
            phrases.append(phrases[0][:1])
        places = [
            starts[place]
            for tokens, starts in readings
            for phrase in phrases
            if (place := _find(tokens, phrase)) is not None
        ]
        if places:
            found.append((min(places), index, member))
    return [member for _, _, member in sorted(found, key=lambda f: (f[0], f[1]))]


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
