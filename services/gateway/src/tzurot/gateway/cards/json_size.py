"""The size of a JSON document as `json.dumps(..., ensure_ascii=False)` would write it, in
UTF-8 bytes, counted without writing it.

Import checks that a book's or a card's own export would import again (`lorebooks`,
`admin/cards`). Writing the export to measure it cost several times the document's memory
(an indented string, its UTF-8 copy, and the dicts it was dumped from), for every import at
once; counting holds nothing but one escaped string at a time. Part of a document may be
measured apart and stand in for itself (`Measured`), so a book's entries can be built, counted
and dropped one at a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

_LITERALS = {True: 4, False: 5}  # "true", "false"


@dataclass(frozen=True)
class Measured:
    """A value measured already (`measure`), standing in for it: its size written at the
    document's top level, and its line breaks (each is indented deeper where it sits)."""

    size: int
    newlines: int = 0


def json_bytes(value: Any, *, indent: int | None = None) -> int:
    """`len(json.dumps(value, ensure_ascii=False, indent=indent).encode())`, compact (`,` and
    `:` with no spaces) when `indent` is None."""
    return measure(value, indent=indent).size


def measure(value: Any, *, indent: int | None = None) -> Measured:
    """The value's size and line breaks, as `json_bytes` counts them."""
    size, newlines = _measure(value, 0, indent)
    return Measured(size, newlines)


def _text_bytes(text: str) -> int:
    escaped: str = encode_basestring(text)
    return len(escaped) if escaped.isascii() else len(escaped.encode("utf-8"))


def _scalar_bytes(value: Any) -> int:
    if value is None:
        return 4
    if isinstance(value, bool):
        return _LITERALS[value]
    if isinstance(value, str):
        return _text_bytes(value)
    if isinstance(value, int):
        return len(int.__repr__(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return len(float.__repr__(value))
        return len(json.dumps(value))  # NaN, Infinity, -Infinity
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _key_bytes(key: Any) -> int:
    if type(key) is str:
        return _text_bytes(key)
    return _text_bytes(json.dumps(key))  # json writes a number's or literal's text, quoted


def _measure(value: Any, level: int, indent: int | None) -> tuple[int, int]:
    """(bytes, line breaks) of the value written `level` containers deep."""
    if type(value) is Measured:
        return value.size + value.newlines * (indent or 0) * level, value.newlines
    if not isinstance(value, dict | list | tuple):
        return _scalar_bytes(value), 0
    if not value:
        return 2, 0  # [] or {}
    size = 2 + len(value) - 1  # brackets, commas
    newlines = 0
    deeper = level + 1
    items: Iterable[Any] = value
    if isinstance(value, dict):
        size += len(value) * (1 if indent is None else 2)  # ":" or ": "
        size += sum(_key_bytes(key) for key in value)
        items = value.values()
    for item in items:  # a string inline: this runs once a value
        if type(item) is str:
            escaped = encode_basestring(item)
            size += len(escaped) if escaped.isascii() else len(escaped.encode("utf-8"))
        else:
            inner, breaks = _measure(item, deeper, indent)
            size += inner
            newlines += breaks
    if indent is not None:  # each item on its own line, then the closing bracket
        size += len(value) * (1 + indent * deeper) + 1 + indent * level
        newlines += len(value) + 1
    return size, newlines
