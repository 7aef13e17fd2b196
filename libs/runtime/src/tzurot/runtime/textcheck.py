"""Values no service can store or convert: found at the edge of every service, first.

Postgres refuses NUL (U+0000) in `text` and `jsonb`; a request carrying it would otherwise
fail deep inside a statement (INTERNAL). Protobuf already guarantees valid UTF-8 (no lone
surrogates), so NUL is the one character to look for. A `Timestamp` outside years 1 to 9999 or
with nanos outside [0, 1e9) cannot become a datetime (protobuf raises ValueError). A JSON
`Value` (in a `Struct`) holding NaN or an infinity cannot become JSON (protobuf raises
ValueError; jsonb has no such number). The check
walks every field of a request, nested messages, repeated fields and maps included, and
names the first offending field the way `BadRequest` does (`references[0].content`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tzurot.runtime.errors import InvalidArgument

_UNSTORABLE = "\x00"
_TIMESTAMP = "google.protobuf.Timestamp"
_JSON_VALUE = "google.protobuf.Value"
_MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
_MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE
_MAX_DEPTH = 100
"""protobuf's own parse limit (upb's default recursion depth): every message that parsed is
walked whole. A JSON list costs two levels (Value, ListValue), so 32 left a NaN or NUL 16
lists deep unchecked (review 330 L1)."""


def unstorable_field(message: Message, prefix: str = "", depth: int = 0) -> str | None:
    """The path of the first string field holding a character Postgres cannot store."""
    found = _unstorable(message, depth)
    return None if found is None else prefix + found


def _unstorable(message: Message, depth: int) -> str | None:
    """The path below `message` of its first offending field. Paths are built on the way
    back from a find only: a clean request (nearly every one) builds none."""
    if depth > _MAX_DEPTH:
        return None
    for field, value in message.ListFields():
        kind = _kind(field)
        if kind == _SKIP:
            continue
        if kind == _SINGLE:
            found = _in_single(field, value, depth)
        elif kind == _REPEATED:
            found = _in_repeated(field, value, depth)
        else:
            found = _in_map(field, value, depth)
        if found is not None:
            return field.name + found
    return None


def check_storable(message: Message) -> None:
    """Raises InvalidArgument naming the field when `message` holds a value no service can
    store: text with NUL, or a timestamp out of range."""
    path = unstorable_field(message)
    if path is None:
        return
    if path.endswith(_NUMBER_MARK):
        path = path.removesuffix(_NUMBER_MARK)
        raise InvalidArgument(
            path,
            f"{path} is not a finite number (JSON has no NaN or Infinity)",
            reason="INVALID_NUMBER",
        )
    if path.endswith(_TIME_MARK):
        path = path.removesuffix(_TIME_MARK)
        raise InvalidArgument(
            path, f"{path} is not a valid time (years 1 to 9999)", reason="INVALID_TIMESTAMP"
        )
    raise InvalidArgument(
        path, f"{path} contains a NUL character, which cannot be stored", reason="NUL_CHARACTER"
    )


_TIME_MARK = "\x00time"  # marks a timestamp path (a path never holds NUL itself)
_NUMBER_MARK = "\x00number"  # marks a JSON value holding NaN or an infinity


# A field's shape (`_kind`): plain ints, compared faster than an Enum's members.
_SKIP = 0  # nothing to check: numbers, enums, booleans, bytes (one or repeated)
_SINGLE = 1
_REPEATED = 2
_MAP = 3


@functools.cache
def _kind(field: FieldDescriptor) -> int:
    """A field's shape, read from its descriptor once per field of the schema."""
    if field.type not in (_STRING, _MESSAGE):
        return _SKIP
    if not field.is_repeated:
        return _SINGLE
    entry = field.message_type
    if field.type == _MESSAGE and entry is not None and entry.GetOptions().map_entry:
        return _MAP
    return _REPEATED


def _in_single(field: FieldDescriptor, value: object, depth: int) -> str | None:
    """The path below `value`: empty when `value` itself offends, or a mark; None if clean."""
    if field.type == _STRING and isinstance(value, str) and _UNSTORABLE in value:
        return ""
    if field.type == _MESSAGE and isinstance(value, Message):
        if value.DESCRIPTOR.full_name == _TIMESTAMP:
            return None if _valid_time(value) else _TIME_MARK
        if value.DESCRIPTOR.full_name == _JSON_VALUE and _not_finite(value):
            return _NUMBER_MARK
        found = _unstorable(value, depth + 1)
        return None if found is None else "." + found
    return None


def _not_finite(value: Any) -> bool:
    return value.WhichOneof("kind") == "number_value" and not math.isfinite(value.number_value)


def _valid_time(stamp: Any) -> bool:
    return bool(_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 1_000_000_000)


def _in_repeated(field: FieldDescriptor, values: Iterable[Any], depth: int) -> str | None:
    for index, item in enumerate(values):
        found = _in_single(field, item, depth)
        if found is not None:
            return f"[{index}]{found}"
    return None


def _in_map(field: FieldDescriptor, mapping: Mapping[Any, Any], depth: int) -> str | None:
    entry = field.message_type
    assert entry is not None  # _kind checked it
    value_field = entry.fields_by_name["value"]
    for key, item in mapping.items():
        if isinstance(key, str) and _UNSTORABLE in key:
            return ""
        found = _in_single(value_field, item, depth)
        if found is not None:
            where = f"[{key!r}]" if isinstance(key, str) and len(key) <= 64 else "[…]"
            return where + found
    return None
