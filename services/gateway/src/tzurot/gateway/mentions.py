"""Finds the personalities a message addresses: `@name`, `@alias` (names before global
aliases, then the longest match: `find_mentions`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tzurot.gateway.domain import Personality
from tzurot.gateway.personalities import continues_word, mention_key, normalize_alias, same_key
from tzurot.runtime.emphasis import Emphasis
from tzurot.runtime.folding import fold
from tzurot.runtime.mention_starts import MentionStarts

_MINE, _SLUG, _DISPLAY_NAME, _DISPLAY_KEY, _ALIAS = range(5)
"""How strongly a name means its personality, strongest first (`find_mentions`)."""


def _names(personality: Personality) -> dict[str, int]:
    """The personality's names (normalized), each with its rank: slug, display name as
    written ("@✨Luna✨", "@Sage 🌙"), display name by its `mention_key` ("Dr. Who?" is
    mentioned as "@Dr. Who" too), alias. The name as written ranks before its key, so
    "@Sage" means a personality named Sage before one named "Sage 🌙", whose own mention is
    the longer "@Sage 🌙". Each as keys are compared (`same_key`)."""
    ranked: dict[str, int] = {}
    kinds = [
        (same_key(normalize_alias(personality.slug)), _SLUG),
        (same_key(normalize_alias(personality.display_name)), _DISPLAY_NAME),
        (mention_key(personality.display_name), _DISPLAY_KEY),
        *((same_key(normalize_alias(alias)), _ALIAS) for alias in personality.aliases),
    ]
    for key, rank in kinds:
        if key:
            ranked[key] = min(rank, ranked.get(key, rank))
    return ranked


def find_mentions(
    content: str,
    personalities: Sequence[Personality],
    limit: int,
    personal: Sequence[tuple[str, Personality]] = (),
) -> list[tuple[Personality, str, int]]:
    """(personality, matched text, offset) for each `@name` in order of appearance.

    A name matches case-insensitively, whitespace-collapsed, and only where a word ends after
    it (not before a letter, combining mark, digit, '_' or '-'): "@lil!", "@lil," and
    "@lil's" mention `lil`, "@lily" and "@lil-y" do not; or where the '_'s after it close
    Discord's italics or underline that a '_' run before its '@' opened
    (tzurot.runtime.emphasis): "_waves at @Sage_", "__@Sage__hi" and "_@Sage_です" mention
    Sage, "ping @Sage_ lol", "@Sage_bot" and "__init__@Sage__" do not, nor does
    "@night_owl_" mention night_owl (its own '_' opened the italics: "@night" and italic
    "owl"). A personality is reported once, at its first
    mention. An '@' in an e-mail address (ada@sage.org), a link
    (https://mastodon.social/@sage, youtube.com/@sage), Discord's code (`@Sage hi`) or its
    ping of everybody ("@everyone's friend") starts none (tzurot.runtime.mention_starts,
    which says what each is); any other does, after a word too ("ねえ@Sage",
    "main.py/@Sage").
    `personal` are the speaker's own aliases (normalized alias, personality): the same name
    means their personality, not anyone else's.

    At each `@`, the names that match are ranked, and the first wins:

    1. A name before a global alias, whatever their lengths: the speaker's own aliases and
       the personalities' own names (slugs, display names) first, global aliases only where
       none of those matches. So a global alias that merely extends someone's name with more
       words or punctuation ("sage please", "sage's", from before the gateway refused them:
       store/alias_rules.py) never takes "@Sage please help" from Sage, and an alias
       matching a name of the same text never takes it either.
    2. Then the longest, so "@the oracle" beats "@the" among names (and among aliases), in
       emphasis too ("_asks @the oracle_"); "@sage_" is a personality named "sage_" before
       Sage, but "__@sage__" is Sage underlined (a name ends where its closing markers
       begin, never inside them).
    3. Then, at equal length: the speaker's own alias, a slug, a display name as written, a
       display name by its key, a global alias (as `find_personality` ranks them); then the
       oldest personality, then the smallest id. So the result never depends on the order
       of `personalities`.
    """
    mine = {same_key(normalize_alias(a)): p for a, p in personal if normalize_alias(a)}
    everyone = [
        (name, rank, p)
        for p in personalities
        for name, rank in _names(p).items()
        if name not in mine
    ]
    ranked = [*((name, _MINE, p) for name, p in mine.items()), *everyone]
    ranked.sort(
        key=lambda item: (
            item[1] == _ALIAS,
            -len(item[0]),
            item[1],
            item[2].created_at,
            item[2].id,
        )
    )
    candidates = [(name, p) for name, _rank, p in ranked]
    folded = fold(content, str.lower)  # names are lower-cased (normalize_alias, _names)
    lowered = same_key(folded.text)  # as the names are (`same_key`), offsets kept
    starts: MentionStarts | None = None  # made at the first '@' a name follows
    emphasis: Emphasis | None = None  # made at the first name a '_' follows

    def closes(start: int, end: int) -> bool:
        nonlocal emphasis
        emphasis = emphasis or Emphasis(content)
        return emphasis.closes_at(folded.original(end), opened_before=folded.original(start))

    found: list[tuple[Personality, str, int]] = []
    seen: set[str] = set()
    index = lowered.find("@")
    while index != -1 and len(found) < limit:
        end = index + 1
        matched = _first_name(lowered, index + 1, candidates, folded.aligned, closes)
        if matched is not None:
            start = folded.original(index)
            starts = starts or MentionStarts(content)
            if starts.may_start(start):  # not an e-mail address's, a link's, in code
                end_of_match, personality = matched
                end = end_of_match
                if personality.id not in seen:
                    seen.add(personality.id)
                    found.append((personality, content[start : folded.original(end)], start))
        index = lowered.find("@", end)
    return found


def _first_name(
    text: str,
    start: int,
    candidates: Sequence[tuple[str, Personality]],
    aligned: Callable[[int], bool],
    closes: Callable[[int, int], bool],
) -> tuple[int, Personality] | None:
    """The end of the first of `candidates` (ranked) written at `start` and ending where a
    word does or where Discord's emphasis opened before it closes (`closes(start, end)`: the
    markers are read once per message, whatever the number of names), with its
    personality."""
    for name, personality in candidates:
        end = _match(text, start, name)
        if end is None or not aligned(end):
            continue
        if end == len(text) or not continues_word(text[end]):
            return end, personality
        if text[end] == "_" and closes(start, end):
            return end, personality
    return None


def _match(text: str, start: int, name: str) -> int | None:
    """End of `name` in `text` at `start`, with any run of whitespace matching a space
    (whatever follows it)."""
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
    return pos
