"""Hypothesis strategies for any protobuf request, built from its descriptor.

Well-typed messages: every field may be set or left unset, strings mix arbitrary text with
values that reach deep (names of the seeded personality, known providers, ids) and with the
hostile ones (NUL, 10,000 characters, blanks), numbers reach their type's bounds, enums take
unknown values, timestamps go out of range, oneofs pick one member, maps and repeated fields
get a few entries. Malformed requests are arbitrary bytes on the wire.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

MAX_DEPTH = 3

HOSTILE_TEXT = ("", " ", "\x00", "a\x00b", "x" * 10_000, "\u202e", "🌙" * 50, "%s%n{}", "../..")
DEEP_TEXT = (
    "Echo",
    "echo",
    "openrouter",
    "openai",
    "discord:alice",
    "chan-1",
    "guild-1",
    "00000000-0000-0000-0000-000000000000",
    "Europe/Berlin",
    "max_history_messages",
    "fake/echo",
    "sk-or-not-a-real-key-0123456789",
)

_INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40), st.sampled_from(HOSTILE_TEXT), st.sampled_from(DEEP_TEXT)
    )


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (low, high, 0, 1, -1, 100, 1000) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text()
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.one_of(st.binary(max_size=64), st.just(b"\x00" * 3), st.just(b"name: Echo\n"))
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return st.one_of(
            st.sampled_from([0.0, -1.0, 0.5, 1.0, 2.0, math.inf, -math.inf, math.nan, 1e300]),
            st.floats(width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64),
        )
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values] if field.enum_type else [0]
        return st.one_of(st.sampled_from(known), st.integers(-5, 1000))
    low, high = _INT_BOUNDS[kind]
    return _integers(low, high)


def messages(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any well-typed instance of the message type `descriptor` describes."""
    return _message(descriptor, depth)


@st.composite
def _message(draw: st.DrawFn, descriptor: Descriptor, depth: int) -> Message:
    cls = _message_class(descriptor)
    message: Any = cls()
    if descriptor.full_name == "google.protobuf.Timestamp":
        message.seconds = draw(
            st.one_of(st.integers(0, 4_000_000_000), _integers(-(2**63), 2**63 - 1))
        )
        message.nanos = draw(st.one_of(st.just(0), _integers(-(2**31), 2**31 - 1)))
        return message  # type: ignore[no-any-return]  # built from its descriptor
    chosen_oneofs: set[str] = set()
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in chosen_oneofs or not draw(st.booleans()):
                continue
            chosen_oneofs.add(oneof.name)
        elif not draw(st.booleans()):
            continue
        _fill(draw, message, field, depth)
    return message  # type: ignore[no-any-return]  # built from its descriptor


def _fill(draw: st.DrawFn, message: Message, field: FieldDescriptor, depth: int) -> None:
    is_message = field.type == FieldDescriptor.TYPE_MESSAGE
    entry = field.message_type
    if field.is_repeated and is_message and entry is not None and entry.GetOptions().map_entry:
        if depth >= MAX_DEPTH:
            return
        key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
        target = getattr(message, field.name)
        for _ in range(draw(st.integers(0, 2))):
            key = draw(_scalar(key_field))
            if value_field.message_type is not None:
                target[key].CopyFrom(draw(_message(value_field.message_type, depth + 1)))
            else:
                target[key] = draw(_scalar(value_field))
        return
    if is_message:
        if depth >= MAX_DEPTH or entry is None:
            return
        count = draw(st.integers(0, 2)) if field.is_repeated else 1
        for _ in range(count):
            value = draw(_message(entry, depth + 1))
            if field.is_repeated:
                getattr(message, field.name).add().CopyFrom(value)
            else:
                getattr(message, field.name).CopyFrom(value)
        return
    if field.is_repeated:
        getattr(message, field.name).extend(draw(st.lists(_scalar(field), max_size=3)))
    else:
        setattr(message, field.name, draw(_scalar(field)))


def _message_class(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory  # noqa: PLC0415 - only the fuzz tests need it

    return message_factory.GetMessageClass(descriptor)


def malformed() -> st.SearchStrategy[bytes]:
    """Bytes that are rarely a valid message: truncated varints, bad wire types, junk."""
    return st.one_of(
        st.binary(min_size=1, max_size=64),
        st.sampled_from([b"\x0a\xff\xff\xff\xff\x0f", b"\x0f", b"\x0a\x05ab", b"\xff" * 9]),
    )
