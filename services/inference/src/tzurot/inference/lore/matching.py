"""Key matching and V3 decorators of lorebook entries (SillyTavern's rules).

A key written `/pattern/flags` is a regular expression (JavaScript flags i, m, s, u, g, y;
the last three change nothing here); so is every key of an entry with `use_regex`. Other
keys match as text: case-insensitively unless the entry says otherwise, and with
`match_whole_words` a one-word key must stand between non-word characters while a key of
several words matches as a substring. A regex that does not compile, that
`tzurot.runtime.regex_guard` refuses before compiling (one that would expand too far; the
gateway refuses a book with such a key at import), or that runs longer than
`REGEX_TIMEOUT_SECONDS`, matches nothing; and one activation (every key of every entry, every
recursion step) spends at most `REGEX_BUDGET_SECONDS` compiling and searching regex keys
(`RegexBudget`): after that its keys written as regexes match nothing. Text keys are cheap
one by one, but a book of 2,000 entries with 100 keys each over 100 long messages is a minute
of substring searches holding the GIL: they share a budget of their own
(`TEXT_BUDGET_SECONDS`, far above what any real book needs), after which they match nothing
either. Regex searches release the GIL (`concurrent=True`), so a scan run in a worker thread
leaves the event loop free.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import regex

from tzurot.inference.lore.model import Entry, LoreRole, Position
from tzurot.runtime.regex_guard import compile_key, key_pattern

REGEX_TIMEOUT_SECONDS = 0.05
"""One regex search: longer, and it matches nothing."""
REGEX_BUDGET_SECONDS = 0.2
"""All regex searches of one activation together (a book of 2,000 slow patterns would
otherwise cost 2,000 x `REGEX_TIMEOUT_SECONDS` a message)."""
TEXT_BUDGET_SECONDS = 1.0
"""All text-key searches of one activation together (substring and whole-word): a real
book's take milliseconds; a hostile one's would hold the GIL for a minute a message."""
LORE_REGEX_BUDGET_SPENT = "lore_regex_budget_spent"
"""A degraded answer's reason: keys went unmatched once a budget (regex or text) was spent."""


def key_regex(key: str, *, force: bool = False) -> regex.Pattern[str] | None:
    """The compiled regex of a `/pattern/flags` key (any key when `force`); else None.
    Read (`key_pattern`), compiled and cached within `regex_guard`'s bounds (shared with the
    gateway, which refuses at import a key they would refuse): a key that would expand past
    them is refused before compiling and matches nothing."""
    found = key_pattern(key, force=force)
    return None if found is None else compile_key(*found)


@functools.lru_cache(maxsize=64)
def _lower(text: str) -> str:
    """The scanned text lowercased once per scan, not once per key."""
    return text.lower()


def _search(pattern: regex.Pattern[str], text: str, timeout: float = REGEX_TIMEOUT_SECONDS) -> bool:
    try:
        return pattern.search(text, timeout=timeout, concurrent=True) is not None
    except TimeoutError:
        return False


def _regex_found(key: str, text: str, *, force: bool, timeout: float) -> bool | None:
    """Whether regex key `key` is found in `text`; None when it is no regex (a text key)."""
    pattern = key_regex(key, force=force)
    if pattern is None:
        return False if force else None  # an invalid regex of a use_regex entry: no match
    return _search(pattern, text, timeout)


class RegexBudget:
    """The time one activation has left for regex keys (compiling and searching) and, apart,
    for text keys, on `clock`. One per scan, used by one thread: nothing in it is shared."""

    def __init__(
        self,
        seconds: float = REGEX_BUDGET_SECONDS,
        *,
        text_seconds: float = TEXT_BUDGET_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._left = seconds
        self._text_left = text_seconds
        self._clock = clock
        self.searches = 0
        """Regex keys compiled (when not cached) and searched."""
        self.skipped = 0
        """Regex keys not searched (so not matching) because the budget was spent."""
        self.spent_on: tuple[str, str] | None = None
        """(book id, entry uid) whose keys were being matched when the budget ran out."""

    @property
    def spent(self) -> bool:
        """Either budget ran out: some keys went unmatched."""
        return self._left <= 0 or self._text_left <= 0

    def text_found(self, search: Callable[[], bool]) -> bool:
        """A text key's `search` within the text budget: False once it is spent."""
        if self._text_left <= 0:
            self.skipped += 1
            return False
        start = self._clock()
        try:
            return search()
        finally:
            self._text_left -= self._clock() - start

    def regex_found(self, key: str, text: str, *, force: bool) -> bool | None:
        """`_regex_found` within the budget: False once it is spent, and for a search cut
        off by `REGEX_TIMEOUT_SECONDS` or by what is left of the budget."""
        if self._left <= 0:
            self.skipped += 1
            return False
        self.searches += 1
        start = self._clock()
        try:
            return _regex_found(
                key, text, force=force, timeout=min(REGEX_TIMEOUT_SECONDS, self._left)
            )
        finally:
            self._left -= self._clock() - start


def matches(
    text: str,
    key: str,
    entry: Entry,
    *,
    case_sensitive: bool,
    whole_words: bool,
    budget: RegexBudget | None = None,
) -> bool:
    """Whether `key` occurs in the scanned `text` under the entry's rules (a regex key within
    `budget`, else within `REGEX_TIMEOUT_SECONDS` alone)."""
    key = key.strip()
    if not key:
        return False
    if entry.use_regex or key_pattern(key) is not None:
        found = (
            _regex_found(key, text, force=entry.use_regex, timeout=REGEX_TIMEOUT_SECONDS)
            if budget is None
            else budget.regex_found(key, text, force=entry.use_regex)
        )
        if found is not None:
            return found
    if budget is None:
        return _text_found(text, key, case_sensitive=case_sensitive, whole_words=whole_words)
    return budget.text_found(
        lambda: _text_found(text, key, case_sensitive=case_sensitive, whole_words=whole_words)
    )


def _text_found(text: str, key: str, *, case_sensitive: bool, whole_words: bool) -> bool:
    haystack = text if case_sensitive else _lower(text)
    needle = key if case_sensitive else key.lower()
    if not whole_words or len(needle.split()) > 1:
        return needle in haystack
    bounded = compile_key(rf"(?:^|\W)({regex.escape(needle)})(?:$|\W)", 0)
    return bounded is not None and _search(bounded, haystack)


# -- V3 decorators -------------------------------------------------------------------------

_POSITIONS: dict[str, Position] = {
    "before_desc": "before_char",
    "after_desc": "after_char",
    "personality": "after_char",
    "scenario": "after_char",
}
_KNOWN = {
    "activate",
    "dont_activate",
    "depth",
    "role",
    "scan_depth",
    "position",
    "activate_only_after",
    "activate_only_every",
    "additional_keys",
    "exclude_keys",
    "keep_activate_after_match",
    "dont_activate_after_match",
    "ignore_on_max_context",
    "is_greeting",
}


@dataclass
class Decorators:
    """What an entry's leading `@@name value` lines ask for, and the content without them."""

    content: str
    activate: bool = False
    dont_activate: bool = False
    depth: int | None = None
    role: LoreRole | None = None
    scan_depth: int | None = None
    position: Position | None = None
    activate_only_after: int | None = None
    activate_only_every: int | None = None
    additional_keys: list[str] = field(default_factory=list)
    exclude_keys: list[str] = field(default_factory=list)
    keep_activate_after_match: bool = False
    dont_activate_after_match: bool = False
    ignore_on_max_context: bool = False
    is_greeting: int | None = None

    @property
    def remembers_match(self) -> bool:
        return self.keep_activate_after_match or self.dont_activate_after_match


def _number(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def _apply(
    found: Decorators, name: str, value: str, seen: set[str]
) -> bool:  # one branch per decorator of the spec
    """Applies one decorator; False when it is not recognised or its value is invalid."""
    if name not in _KNOWN:
        return False
    if name in seen and name not in ("additional_keys",):
        return True  # only the first of a name counts
    number = _number(value)
    if name == "activate":
        found.activate = True
    elif name in (
        "dont_activate",
        "keep_activate_after_match",
        "dont_activate_after_match",
        "ignore_on_max_context",
    ):
        setattr(found, name, True)
    elif name in (
        "depth",
        "scan_depth",
        "activate_only_after",
        "activate_only_every",
        "is_greeting",
    ):
        if number is None or number < 0:
            return False
        setattr(found, name, number)
    elif name == "role":
        if value.strip() not in ("system", "user", "assistant"):
            return False
        found.role = value.strip()  # type: ignore[assignment]
    elif name == "position":
        if value.strip() not in _POSITIONS:
            return False
        found.position = _POSITIONS[value.strip()]
    elif name == "additional_keys":
        found.additional_keys.extend(k.strip() for k in value.split(",") if k.strip())
    elif name == "exclude_keys":
        found.exclude_keys.extend(k.strip() for k in value.split(",") if k.strip())
    seen.add(name)
    return True


@functools.lru_cache(maxsize=4096)
def decorators(content: str) -> Decorators:
    """Parses the decorator lines at the top of `content` (fallbacks `@@@` are tried in
    order when the decorator before them was not recognised)."""
    lines = content.split("\n")
    found = Decorators(content=content)
    if not content.startswith("@@"):
        return found
    seen: set[str] = set()
    index = 0
    previous_ok = True
    while index < len(lines) and lines[index].startswith("@@"):
        line = lines[index]
        fallback = line.startswith("@@@")
        name, _, value = line.lstrip("@").partition(" ")
        if fallback:
            if not previous_ok:
                previous_ok = _apply(found, name.strip(), value, seen)
        else:
            previous_ok = _apply(found, name.strip(), value, seen)
        index += 1
    found.content = "\n".join(lines[index:]).strip("\n")
    return found
