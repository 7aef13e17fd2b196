"""JSON documents users upload (character cards, lorebooks, shapes.inc backups), read safely.

An upload arrives as bytes, so the interceptor's check of proto strings never sees inside it.
`json.loads` accepts what later steps cannot handle: NaN and infinities (pydantic turns them
into null, `int()` raises), numbers no double holds (a card's or a lorebook's extensions and
a shape's custom fields end in a protobuf `Struct`, whose numbers are doubles), nesting that
exhausts the stack (RecursionError) or that protobuf will not decode (see `MAX_JSON_DEPTH`),
and strings Postgres cannot store in `text` or `jsonb` (NUL, a lone surrogate from a
`\\ud800` escape), which failed deep inside a statement as INTERNAL. `load_uploaded_json`
refuses all of them with an InvalidArgument naming the place, and a document of more values
than its caller takes before parsing it (each costs tens of bytes parsed); it quotes no text, only a
number it refuses (up to 40 characters).

A place is a path from `root` (`memories[3].result`, `data.extensions.tzurot.aliases[0]`).
A key is shown when it is a name (`.description`: ASCII letters, digits and `_`, up to 64) or
a number (`entries["0"]`, world info's entry ids); any other key may be the user's own words
and is shown as `.<field>`. A path stops after `_PATH_LEVELS` steps with "…".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from tzurot.runtime.errors import InvalidArgument

MAX_JSON_DEPTH = 24
"""How many levels arrays and objects may nest. Real cards and lorebooks need fewer than 10,
shapes.inc backups fewer than 5. The bound is protobuf's: a decoder refuses a message nested
more than 100 levels, and each JSON object in a `Struct` costs three of them (`Struct`, map
entry, `Value`), so 33 objects is the most a bare `Struct` holds; 24 leaves some 28 levels for the
messages around it (a reply, a Personality, its card) and for a document's outer levels."""
MAX_JSON_VALUES = 500_000
"""How many values (arrays, objects and scalars) a card or a lorebook may hold, given as
`max_values`. A lorebook at its limits (2,000 entries of 100 keys) holds about 300,000; every
value costs the later steps (validation, the copies export makes) tens of bytes or more, so a
document of millions of tiny values (`[{},{},…]`) is refused here, before them."""
MAX_INT_DIGITS = 300
"""An integer with more digits does not fit a double (the largest is about 1.8e308)."""
_PATH_LEVELS = 8
_NUMBER_CHARS = 40
_NAME_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_NUMBER_KEY = re.compile(r"[0-9]{1,20}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _BadNumber(ValueError):
    """A number literal no later step can hold (the hooks of `json.loads` raise it)."""


def _refuse_constant(literal: str) -> Any:
    raise _BadNumber(f"{literal} is not a number JSON allows")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        shown = literal if len(literal) <= _NUMBER_CHARS else literal[:_NUMBER_CHARS] + "…"
        raise _BadNumber(f"a number is too large for a double ({shown})")
    return value


def _double_sized_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadNumber(
            f"an integer has more than {MAX_INT_DIGITS} digits, more than a double holds"
        )
    return int(literal)


def load_uploaded_json(
    data: bytes, *, what: str, reason: str, root: str = "", max_values: int | None = None
) -> Any:
    """The decoded document, or InvalidArgument: `what` names it in messages ("the
    lorebook"), `reason` is given when it is not JSON at all, `root` starts every path
    ("memories"; none for a card, whose paths start at its keys), `max_values` bounds how
    many values it may hold (see `check_uploaded_value`)."""
    field = root or "document"
    if max_values is not None and _raw_value_count(data, max_values) > max_values:
        raise _too_many(what, root, max_values)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument(field, f"{what} is not UTF-8 text", reason=reason) from None
    try:
        document = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_double_sized_int,
        )
    except json.JSONDecodeError as exc:  # its message holds a position, never the data
        raise InvalidArgument(
            field,
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})",
            reason=reason,
        ) from None
    except _BadNumber as exc:
        raise InvalidArgument(field, f"{what}: {exc}", reason="INVALID_NUMBER") from None
    except RecursionError:
        raise InvalidArgument(
            field,
            f"{what} is nested too deeply (more than {MAX_JSON_DEPTH} levels)",
            reason="NESTED_TOO_DEEP",
        ) from None
    check_uploaded_value(document, what=what, root=root, max_values=max_values)
    return document


_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|\[\s*\]|\{\s*\}|([,\[{])', re.DOTALL)
"""A string, an empty array or object (each counted whole, as nothing), or a comma or an
opening bracket (captured: each one more value)."""


def _raw_value_count(data: bytes, max_values: int) -> int:
    """How many values `json.loads` would make of the document, counted in its bytes before
    it is parsed (parsing `[{},{},…]` takes some 70 bytes a value, hundreds of MB for a
    document within its size limit): 1, and one more for each comma and each non-empty array
    or object outside strings. Exact for valid JSON (a duplicate key counts: the parser makes
    its value too). First an upper bound at C speed (every comma and bracket, strings
    included); only past `max_values` is the document walked token by token, holding one
    token at a time."""
    bound = 1 + data.count(b",") + data.count(b"[") + data.count(b"{")
    if bound <= max_values:
        return bound
    return 1 + sum(1 for token in _TOKEN.finditer(data) if token.lastindex)


def check_uploaded_value(
    document: Any, *, what: str, root: str = "", max_values: int | None = None
) -> None:
    """Walks decoded JSON once, in document order (a stack of iterators, no recursion):
    InvalidArgument naming the path of the first string or key Postgres cannot store, of the
    first array or object nested deeper than `MAX_JSON_DEPTH`, or (reason TOO_LARGE) of the
    value past `max_values` values (arrays, objects and scalars counted alike; None: any
    number). The walk holds one iterator per level, however wide the document."""
    counted = 1  # the document itself
    stack: list[Iterator[tuple[Any, str, int]]] = []
    _visit(document, root, 0, what, stack)
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            continue
        counted += 1
        value, path, depth = step
        if max_values is not None and counted > max_values:
            raise _too_many(what, path, max_values)
        _visit(value, path, depth, what, stack)


def _visit(
    value: Any, path: str, depth: int, what: str, stack: list[Iterator[tuple[Any, str, int]]]
) -> None:
    """Checks one value; an array or object puts the iterator of its items on `stack`."""
    if isinstance(value, str):
        _check_text(value, path, what)
    elif isinstance(value, list | dict) and depth >= MAX_JSON_DEPTH:
        raise InvalidArgument(
            path or "document",
            f"{_subject(what, path)} is nested more than {MAX_JSON_DEPTH} levels deep",
            reason="NESTED_TOO_DEEP",
        )
    elif isinstance(value, list):
        stack.append(_items(value, path, depth))
    elif isinstance(value, dict):
        stack.append(_members(value, path, depth, what))


def _items(value: list[Any], path: str, depth: int) -> Iterator[tuple[Any, str, int]]:
    for index, item in enumerate(value):
        yield item, _child(path, depth, f"[{index}]"), depth + 1


def _members(
    value: dict[str, Any], path: str, depth: int, what: str
) -> Iterator[tuple[Any, str, int]]:
    for key, item in value.items():
        child = _child(path, depth, _key_step(key))
        _check_text(key, child, what, key=True)
        yield item, child, depth + 1


def _too_many(what: str, path: str, max_values: int) -> InvalidArgument:
    return InvalidArgument(
        path or "document",
        f"{what} holds more than {max_values} JSON values (arrays, objects, strings, numbers "
        "and literals counted alike)",
        reason="TOO_LARGE",
    )


def _check_text(text: str, path: str, what: str, *, key: bool = False) -> None:
    subject = f"{_subject(what, path)} a field name" if key else _subject(what, path)
    if "\x00" in text:
        raise InvalidArgument(
            path or "document",
            f"{subject} contains NUL (U+0000), which cannot be stored",
            reason="NUL_CHARACTER",
        )
    if not text.isascii() and _SURROGATE.search(text):
        raise InvalidArgument(
            path or "document",
            f"{subject} contains an unpaired surrogate (U+D800 to U+DFFF), which is not text",
            reason="INVALID_TEXT",
        )


def _subject(what: str, path: str) -> str:
    return f"{what}: {path}:" if path else what


def _key_step(key: str) -> str:
    if _NAME_KEY.fullmatch(key):
        return f".{key}"
    if _NUMBER_KEY.fullmatch(key):
        return f'["{key}"]'
    return ".<field>"


def _child(path: str, depth: int, step: str) -> str:
    """The path one level down; beyond `_PATH_LEVELS` levels it ends in "…" instead."""
    if depth >= _PATH_LEVELS:
        return path if path.endswith("…") else f"{path}…"
    return path + step if path else step.removeprefix(".")
