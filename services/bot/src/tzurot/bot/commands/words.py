"""Counts in words: "1 entry", "2 entries" (never "1 entries") in the commands' replies."""

from __future__ import annotations


def plural(count: int, singular: str, plural_form: str | None = None, *, sep: str = "") -> str:
    """`count` and its noun, singular for exactly one: plural(1, "entry", "entries") is
    "1 entry", plural(3, "sample") "3 samples" (the plural form defaults to `singular` + s).
    `sep`: the thousands separator, none by default: "," gives "1,200 characters", " " gives
    "1 200 characters"."""
    number = f"{count:,}".replace(",", sep) if sep else str(count)
    noun = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{number} {noun}"
