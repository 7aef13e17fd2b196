"""The numbers of a lorebook entry within what the protos carry, and entry uids made unique.

Lore entries travel as int32 fields (`common.proto`): a number past that range, once stored,
would make every reply that carries the book fail. Import keeps them in range:

- `order` and `priority` sort entries; clamping one would silently reorder the book, so a
  value outside int32 is refused, naming the field.
- `sticky`, `cooldown`, `delay` (messages) and `delay_until_recursion` (a recursion level)
  saturate: a million messages, or a level no recursion reaches, already means "for the rest
  of the chat" / "never", as any larger number does in SillyTavern. They are clamped to
  `MAX_TIMED`, which also keeps a window's end (`start + sticky`) within int32.
- A book's `token_budget` is clamped to int32: a larger budget is no budget.

The proto conversion clamps again (`lore_convert`), so a book stored before these checks
still converts.

Uids: inference tells entries apart by (book, uid), and world info is keyed by uid, so two
entries with one uid lose one of them. Import keeps a uid of ASCII digits (at most
`MAX_UID_DIGITS`, written without leading zeros) the first time it appears, and renumbers a
repeated one, or one that is not such a number, to the lowest numbers not taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from tzurot.runtime.errors import InvalidArgument

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_TIMED = 1_000_000
"""The largest sticky, cooldown or delay (messages) and delay_until_recursion (level)."""
MAX_UID_DIGITS = 18
"""A numeric uid fits an int64 (and `int()`'s digit limit)."""


def clamp(value: int, low: int, high: int) -> int:
    return min(high, max(low, value))


def timed(value: int) -> int:
    """A sticky / cooldown / delay / delay_until_recursion value within 0..MAX_TIMED."""
    return clamp(value, 0, MAX_TIMED)


def int32(value: int) -> int:
    return clamp(value, INT32_MIN, INT32_MAX)


def checked_int32(value: int, field: str) -> int:
    """`value`, or InvalidArgument naming `field` and the range when it is outside int32."""
    if not INT32_MIN <= value <= INT32_MAX:
        raise InvalidArgument(
            field,
            f"lorebook: {field} is {value}; it must be between {INT32_MIN} and {INT32_MAX}",
            reason="NUMBER_OUT_OF_RANGE",
        )
    return value


def int_or(value: Any, default: int) -> int:
    """A loosely written number (SillyTavern writes some as strings) as an int, else `default`."""
    try:
        return int(value) if value is not None and value != "" else default
    except (TypeError, ValueError, OverflowError):  # OverflowError: an infinity
        return default


def opt_int(value: Any) -> int | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def opt_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def whole(value: float, field: str) -> int:
    """A card book's number as an entry's int32; NaN and infinities have none."""
    if not math.isfinite(value):
        raise InvalidArgument(
            field, f"lorebook: {field}: {value} is not a finite number", reason="INVALID_NUMBER"
        )
    return checked_int32(int(value), field)


def delay_level(value: Any) -> int:
    """`delay_until_recursion`: true is level 1, a number its level, anything else 0."""
    if value is True:
        return 1
    return max(0, int_or(value, 0)) if not isinstance(value, bool) else 0


def numeric_uid(uid: str) -> int | None:
    """The uid as a number when it is one (ASCII digits only: `"²".isdigit()` is true too)."""
    if uid.isascii() and uid.isdigit() and len(uid) <= MAX_UID_DIGITS:
        return int(uid)
    return None


def unique_uids(uids: Iterable[str]) -> list[str]:
    """The uids, each a distinct number: a numeric uid is kept (without leading zeros) the
    first time it appears; a repeated or non-numeric one takes the lowest unused number."""
    given = list(uids)
    numbers = [numeric_uid(uid) for uid in given]
    taken: set[int] = set()
    kept: list[int | None] = []
    for number in numbers:
        if number is not None and number not in taken:
            taken.add(number)
            kept.append(number)
        else:
            kept.append(None)
    free = 0
    result: list[str] = []
    for number in kept:
        if number is not None:
            result.append(str(number))
            continue
        while free in taken:
            free += 1
        taken.add(free)
        result.append(str(free))
    return result
