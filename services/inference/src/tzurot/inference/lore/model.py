"""Lorebook data as inference sees it (converted from the proto in `convert`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Logic = Literal["AND_ANY", "NOT_ALL", "NOT_ANY", "AND_ALL"]
Position = Literal["before_char", "after_char", "at_depth"]
LoreRole = Literal["system", "user", "assistant"]
EffectKind = Literal["sticky", "cooldown", "matched", "greeting"]
"""Timed windows; "matched": the entry fired before (for the V3 decorators
@@keep_activate_after_match and @@dont_activate_after_match; kept for good); "greeting": the
conversation began with the character's greeting number `start` (gateway records it; for
@@is_greeting)."""
MATCHED_FOREVER = 2**31 - 1

DEFAULT_SCAN_DEPTH = 2
"""SillyTavern's default: the last two messages are scanned."""
MAX_SCAN_DEPTH = 1000
DEFAULT_MAX_RECURSION_STEPS = 5
"""Recursion is bounded: at most this many scans after the first."""


@dataclass(frozen=True)
class Entry:
    uid: str
    keys: tuple[str, ...] = ()
    secondary_keys: tuple[str, ...] = ()
    logic: Logic = "AND_ANY"
    content: str = ""
    comment: str = ""
    constant: bool = False
    enabled: bool = True
    order: int = 100
    priority: int | None = None
    position: Position = "before_char"
    depth: int = 4
    role: LoreRole = "system"
    probability: int = 100
    use_probability: bool = True
    case_sensitive: bool | None = None
    match_whole_words: bool | None = None
    use_regex: bool = False
    scan_depth: int | None = None
    sticky: int = 0
    cooldown: int = 0
    delay: int = 0
    exclude_recursion: bool = False
    prevent_recursion: bool = False
    delay_until_recursion: int = 0
    group: tuple[str, ...] = ()
    """Inclusion groups (`groups.py`): of one group's entries, one fires per scan."""
    group_override: bool = False
    group_weight: int = 100
    use_group_scoring: bool = False


@dataclass(frozen=True)
class Book:
    id: str
    name: str
    entries: tuple[Entry, ...]
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False
    scope: str = "personality"
    """Where it is attached: 'channel', 'personality' or 'global' (precedence in that order)."""


@dataclass(frozen=True)
class TimedEffect:
    """A sticky or cooldown window of one entry, in message counts of the conversation."""

    book_id: str
    uid: str
    kind: EffectKind
    start: int
    end: int
    protected: bool = False


@dataclass(frozen=True)
class LoreState:
    """What survives between messages of one conversation (channel and personality)."""

    effects: tuple[TimedEffect, ...] = ()


@dataclass(frozen=True)
class Activation:
    """An entry that fired, with why, ready to be placed."""

    book_id: str
    book_name: str
    entry: Entry
    content: str
    reason: str
    position: Position
    depth: int
    role: LoreRole
    priority: int
    tokens: int = 0


@dataclass(frozen=True)
class Outcome:
    activated: tuple[Activation, ...]
    dropped: tuple[Activation, ...] = ()
    """Fired, but left out by the token budget (the lowest priority first)."""
    state: LoreState = field(default_factory=LoreState)


@dataclass(frozen=True)
class LoreInput:
    """What gateway sent for one reply: the books in play (precedence order) and the state."""

    books: tuple[Book, ...]
    message_count: int = 0
    state: LoreState = field(default_factory=LoreState)


@dataclass(frozen=True)
class LoreResult:
    activated: tuple[Activation, ...]
    dropped: tuple[Activation, ...]
    state: LoreState
    message_count: int
    """The conversation's length after the reply, for gateway to keep."""
