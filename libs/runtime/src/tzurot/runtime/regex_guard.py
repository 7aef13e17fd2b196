"""Compiling a lorebook's regex keys without letting one key use up inference's memory.

Shared by inference, which compiles keys (`compile_key`), and the gateway, which refuses at
import a key this guard would refuse (`key_refusal`), so a book is never stored with a key
that silently matches nothing. `key_pattern` is the one reading of a key as a regex
(SillyTavern's `/pattern/flags`, or any key of a `use_regex` entry) both use.

The `regex` package expands counted repeats when it compiles: `(((a{100}){100}){100}){100}`,
30 characters, is 10^8 nodes (about 27 GB), and compiling happens before any search, so
no search timeout or time budget can stop it. So a pattern is first parsed by the package's
own parser (pure Python, linear in the pattern, nothing expanded; the same grammar the
compiler then reads, so verbose mode, comments and classes cannot hide a repeat), and its
expanded size is counted: every parsed node is one. The compiler writes out a repeat's
minimum count as copies and loops over the rest, so a repeat of a single character or class
(`a{3,30}`, `.{0,2000}`, `[\\s\\S]{0,1500}`) costs its minimum count (and one copy for the
loop): `.{0,2000}` is a node or two, `a{5000}` 5,000. A repeat of anything larger (a group, a
sequence, a backreference) is charged its largest count, and that count may be at most
`MAX_REPEAT_COUNT`. A pattern longer than `MAX_PATTERN_CHARS`, with a group's count over
`MAX_REPEAT_COUNT`, or larger than `MAX_PATTERN_NODES`, is refused, like a pattern that does
not compile: the key matches nothing. Compiled patterns are cached by that size too
(`MAX_CACHED_NODES` in all), so a book of many large keys cannot pile them up either.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

import regex
import structlog
from regex import _regex_core as _typed_core

log = structlog.get_logger(__name__)

MAX_PATTERN_CHARS = 2000
"""A regex key longer than this matches nothing (SillyTavern keys are a few dozen)."""
MAX_REPEAT_COUNT = 1000
"""The largest count a `{m}`, `{m,}` or `{m,n}` of a group (anything but a single character
or class) may have; a single character's or class's repeat is bounded by its expanded size."""
MAX_PATTERN_NODES = 10_000
"""A regex key's expanded size (about 300 bytes compiled per node): `(a{100}){100}` is
10,100, refused; `\\d{3}-\\d{4}` is about ten."""
MAX_CACHED_NODES = 250_000
"""The expanded size of all cached patterns together (about 70 MB at most)."""
MAX_CACHED_PATTERNS = 2048
INVALID = "invalid"
"""`refusal`'s reason for a pattern that does not parse (SillyTavern ignores such a key too)."""

_regex_core: Any = _typed_core
"""The package's parser: private and missing from its type stubs, but the grammar the compiler
reads (pinned by the lock file; `test_regex_guard` fails if it changes shape)."""
_REPEATS = (_regex_core.GreedyRepeat,)  # LazyRepeat and PossessiveRepeat derive from it
_SINGLE_CHARACTERS = (
    _regex_core.Any,  # `.` (AnyAll, AnyU derive from it)
    _regex_core.Character,
    _regex_core.Property,  # `\\w`, `\\p{Lu}`
    _regex_core.Range,
    _regex_core.SetBase,  # `[...]` (its members are counted as its nodes)
)
"""What matches one character: its repeat compiles to one node per copy of its minimum count."""


class _TooCostly(Exception):
    """Why a pattern is refused: a short reason, never the pattern's text."""


def _parse(pattern: str, flags: int) -> Any:  # the package's parse tree: untyped
    """`regex.compile`'s parse step alone (regex/_main.py `_compile`)."""
    global_flags = flags
    for _ in range(3):  # a flag set mid-pattern, `a(?i)b`, makes it parse again once
        source = _regex_core.Source(pattern)
        info = _regex_core.Info(global_flags, source.char_type, {})
        source.ignore_space = bool(info.flags & regex.VERBOSE)
        try:
            return _regex_core._parse_pattern(source, info)
        except _regex_core._UnscopedFlagSet:
            global_flags = info.global_flags
    raise _TooCostly("the flags of the pattern do not settle")


def _children(node: Any) -> list[Any]:
    found: list[Any] = []
    for value in vars(node).values():
        if isinstance(value, _regex_core.RegexBase):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(v for v in value if isinstance(v, _regex_core.RegexBase))
    return found


def _size(node: Any, depth: int = 0) -> int:
    """The node's expanded size; above `MAX_PATTERN_NODES` the count stops being exact.
    `_TooCostly` for a group's count over `MAX_REPEAT_COUNT`."""
    if depth > MAX_PATTERN_CHARS:  # a tree deeper than the pattern is long: not a tree
        raise _TooCostly("the parse tree is too deep")
    times = 1
    if isinstance(node, _REPEATS) and isinstance(node.subpattern, _SINGLE_CHARACTERS):
        # the minimum written out, the rest one loop: `a{5,}` 6 copies, `.{0,2000}` 1
        times = max(1, node.min_count + (node.max_count != node.min_count))
    elif isinstance(node, _REPEATS):
        counts = [c for c in (node.min_count, node.max_count) if c is not None]
        times = max(counts, default=1)
        if times > MAX_REPEAT_COUNT:
            raise _TooCostly(f"a group's repeat count is over {MAX_REPEAT_COUNT}")
    inner = 0
    for child in _children(node):
        inner += _size(child, depth + 1)
        if inner > MAX_PATTERN_NODES:
            break
    return 1 + times * inner


def _measure(pattern: str, flags: int) -> tuple[int, str | None]:
    """The pattern's expanded size, and why it is refused (None: it may be compiled)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return 0, f"longer than {MAX_PATTERN_CHARS} characters"
    try:
        size = _size(_parse(pattern, flags | regex.V0))
    except _TooCostly as exc:
        return 0, str(exc)
    except (regex.error, ValueError, OverflowError, RecursionError, MemoryError):
        return 0, INVALID  # the parser's message may quote the pattern
    except (AttributeError, TypeError):  # the private parser changed shape: fail closed
        return 0, "the regex package's parser is not the one this guard reads"
    if size > MAX_PATTERN_NODES:
        return size, f"expands past {MAX_PATTERN_NODES} nodes"
    return size, None


def refusal(pattern: str, flags: int = 0) -> str | None:
    """Why `pattern` may not be compiled (a short reason, never the pattern), or None."""
    return _measure(pattern, flags)[1]


_DELIMITED = regex.compile(r"^/([\w\W]+?)/([gimsuy]*)$")
_UNESCAPED_SLASH = regex.compile(r"(^|[^\\])/")
_FLAGS = {"i": regex.IGNORECASE, "m": regex.MULTILINE, "s": regex.DOTALL}


def key_pattern(key: str, *, force: bool = False) -> tuple[str, int] | None:
    """The pattern and flags a lorebook key is compiled with: a `/pattern/flags` key's
    (JavaScript flags i, m, s; g, u and y change nothing), or with `force` (a `use_regex`
    entry) the whole key when it is not one; None for a key that matches as text. A
    `/.../` key with an unescaped slash inside is text, or with `force` a pattern whole."""
    match = _DELIMITED.match(key)
    if match:
        pattern, flag_text = match.group(1), match.group(2)
        if _UNESCAPED_SLASH.search(pattern):  # an unescaped delimiter: not a regex
            return (key, 0) if force else None
        flags = 0
        for letter in flag_text:
            flags |= _FLAGS.get(letter, 0)
        return pattern.replace("\\/", "/"), flags
    return (key, 0) if force else None


def key_refusal(key: str, *, force: bool = False) -> str | None:
    """Why the lorebook key would be refused before compiling (too long, a repeat count too
    large, expanding too far): a short reason, never the key. None for a key that may be
    compiled, for a text key, and for one that does not parse (`INVALID`: it matches
    nothing, as in SillyTavern, and costs nothing)."""
    found = key_pattern(key, force=force)
    if found is None:
        return None
    why = refusal(*found)
    return None if why in (None, INVALID) else why


class _Cache:
    """Compiled keys, least recently used first, bounded by count and by expanded size.
    Shared by every scan's worker thread, so a lock guards it (compiling happens outside)."""

    def __init__(self) -> None:
        self._items: OrderedDict[tuple[str, int], tuple[regex.Pattern[str] | None, int]] = (
            OrderedDict()
        )
        self._nodes = 0
        self._lock = threading.Lock()
        self.misses = 0
        """Lookups of a pattern not cached (so compiled, or refused, now)."""

    def get(self, key: tuple[str, int]) -> tuple[bool, regex.Pattern[str] | None]:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return False, None
            self._items.move_to_end(key)
            return True, item[0]

    def put(self, key: tuple[str, int], pattern: regex.Pattern[str] | None, nodes: int) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (pattern, nodes)
            self._nodes += nodes
            while self._items and (
                self._nodes > MAX_CACHED_NODES or len(self._items) > MAX_CACHED_PATTERNS
            ):
                _, (_, dropped) = self._items.popitem(last=False)
                self._nodes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._nodes = 0


_cache = _Cache()


def compile_key(pattern: str, flags: int = 0) -> regex.Pattern[str] | None:
    """`pattern` compiled (V0, like SillyTavern's JavaScript), or None when it is refused or
    does not compile; that is logged once while it stays cached, by digest, never as text."""
    key = (pattern, flags)
    hit, compiled = _cache.get(key)
    if hit:
        return compiled
    size, why = _measure(pattern, flags)
    if why is None:
        try:
            compiled = regex.compile(pattern, flags | regex.V0)
        except (regex.error, ValueError, OverflowError, RecursionError, MemoryError):
            why = INVALID
    if why is not None:
        log.warning(
            "lore.regex_key_refused",
            reason=why,
            pattern_sha256=hashlib.sha256(pattern.encode(errors="replace")).hexdigest()[:16],
            pattern_chars=len(pattern),
        )
    _cache.put(key, compiled, max(1, size) if compiled is not None else 1)
    return compiled
