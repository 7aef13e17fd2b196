"""Finds the personalities a message addresses: `@name`, `@alias`, longest match first."""

from __future__ import annotations

from collections.abc import Sequence

from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import normalize_alias
from tzurot.runtime.folding import fold


def _names(personality: Personality) -> set[str]:
    names = {personality.slug, personality.display_name, *personality.aliases}
    return {normalize_alias(n) for n in names if normalize_alias(n)}


def find_mentions(
    content: str,
    personalities: Sequence[Personality],
    limit: int,
    personal: Sequence[tuple[str, Personality]] = (),
) -> list[tuple[Personality, str, int]]:
    """(personality, matched text, offset) for each `@name` in order of appearance.

    At each `@`, the longest name that matches (case-insensitively, whitespace-collapsed,
    ending at a non-word character) wins, so "@the oracle" beats "@the". A personality is
    reported once, at its first mention. `personal` are the speaker's own aliases (normalized
    alias, personality): the same name means their personality, not anyone else's.
    """
    mine = {normalize_alias(alias): p for alias, p in personal if normalize_alias(alias)}
    everyone = [(name, p) for p in personalities for name in _names(p) if name not in mine]
    candidates = sorted(
        [*mine.items(), *everyone],
        key=lambda item: len(item[0]),
        reverse=True,
    )
    folded = fold(content, str.lower)  # names are lower-cased (normalize_alias, _names)
    lowered = folded.text
    found: list[tuple[Personality, str, int]] = []
    seen: set[str] = set()
    index = lowered.find("@")
    while index != -1 and len(found) < limit:
        end = index + 1
        for name, personality in candidates:
            end_of_match = _match(lowered, index + 1, name)
            if end_of_match is None or not folded.aligned(end_of_match):
                continue
            end = end_of_match
            if personality.id not in seen:
                seen.add(personality.id)
                start, stop = folded.original(index), folded.original(end_of_match)
                found.append((personality, content[start:stop], start))
            break
        index = lowered.find("@", end)
    return found


def _match(text: str, start: int, name: str) -> int | None:
    """End of `name` in `text` at `start`, with any run of whitespace matching a space."""
    pos = start
    for word_index, word in enumerate(name.split(" ")):
        if word_index:
            if pos >= len(text) or not text[pos].isspace():
                return None
            while pos < len(text) and text[pos].isspace():
                pos += 1
        if not text.startswith(word, pos):
            return None
        pos += len(word)
    if pos < len(text) and (text[pos].isalnum() or text[pos] in "_-"):
        return None
    return pos
